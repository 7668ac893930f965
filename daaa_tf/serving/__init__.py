"""Serving: the export contract, the SavedModel/TFLite writer, the parity gate, runners and attention overlays."""
