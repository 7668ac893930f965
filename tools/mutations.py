"""The mutation list of tools/mutation_check.py: one deliberate bug each, with the small test selection that
must catch it. ``old`` must occur exactly once in ``file``; ``new`` replaces it. Add a mutation for every bug
found later (and a test that catches it)."""

ADAPT = "tests/test_adaptation.py"
ADAPT_FAST = [f"{ADAPT}::test_train_step_loss_matches_numpy_eq13",
              f"{ADAPT}::test_source_net_frozen_and_bit_identical",
              f"{ADAPT}::test_trace_posterior_sync_eq11_and_lr_restart",
              f"{ADAPT}::test_em_off_before_first_sync_then_on"]
ADAPT_RESNET = f"{ADAPT}::test_resnet50_all_conv_taps_runs_a_few_steps"
ADAPT_BAD = f"{ADAPT}::test_bad_settings_give_clear_errors"
GRAD_FILE = "tests/test_daaa_gradients.py"
GRAD = [f"{GRAD_FILE}::test_one_sgd_step_follows_the_gradient_of_each_term",  # first: -x stops at the first catch
        f"{GRAD_FILE}::test_attention_energy_custom_gradient_matches_autodiff",
        f"{GRAD_FILE}::test_posterior_mask_keeps_a_sample_exactly_at_p_t"]
HEAD = f"{GRAD_FILE}::test_head_multiplier_moves_the_head_k_times_as_far"
LOSSES = "tests/test_losses.py"
CG = "tests/test_cyclegan.py"
CG_FAST = [f"{CG}::test_train_step_updates_all_networks_and_tracks_losses"]
CG_REF = "tests/test_cyclegan_reference.py"
MIX = "tests/test_mixing.py"
MIX_STAGE = "tests/test_adapt_stage.py::test_mixed_batches_pair_in_batch_per_replica"
EXPORT_BOUNDS = ["tests/test_export.py::test_out_of_bound_format_is_not_installed_unless_told",
                 "tests/test_export.py::test_non_finite_outputs_fail_every_bound",
                 "tests/test_export.py::test_parity_json_has_every_format_within_bounds"]
GATE = "tests/test_export_gate.py"
SKIP = "tests/test_data_skip_reports.py"
MM_CORRUPT = "tests/test_data_mnist_m.py::test_corrupt_and_truncated_pngs_are_skipped_and_counted"
AUG = "tests/test_augment.py"
SEM = "tests/test_cyclegan_semantic.py::test_semantic_term_value_and_weight_enter_the_generator_loss"
SMAPS = "tests/test_source_maps.py"
OFFICE_CORRUPT = "tests/test_data_office31.py::test_corrupt_and_truncated_jpegs_are_skipped_counted_and_cached"


def _m(file, what, old, new, tests):
    return {"file": file, "what": what, "old": old, "new": new, "tests": list(tests)}


_LIST = [
    # ---- the DAAA step (Eq. 4-6, 11-13) -------------------------------------------------------------------
    _m("daaa_tf/method/daaa.py", "L_AT logged but no gradient",
       "at = attention_alignment_loss(families, self.criterion)",
       "at = tf.stop_gradient(attention_alignment_loss(families, self.criterion))", [*GRAD, *ADAPT_FAST]),
    _m("daaa_tf/method/attention.py", "attention energy: custom gradient with its sign flipped",
       "return f * tf.cast(g2, f.dtype)", "return -f * tf.cast(g2, f.dtype)", [*GRAD, LOSSES, *ADAPT_FAST]),
    _m("daaa_tf/method/attention.py", "attention energy: custom gradient halved (g instead of 2g)",
       "g2 = (2.0 * g)[..., None]", "g2 = g[..., None]", [*GRAD, LOSSES]),
    _m("daaa_tf/method/daaa.py", "p_t ignored in the train step (every target kept)",
       "mask = losses.posterior_mask(q, self.threshold, self.em_active)",
       "mask = losses.posterior_mask(q, 0.0, self.em_active)", [*GRAD, *ADAPT_FAST]),
    _m("daaa_tf/method/daaa.py", "L_EM on x_t logged but no gradient",
       'em += losses.em_loss_sum(q, logits["xt"], mask)',
       'em += tf.stop_gradient(losses.em_loss_sum(q, logits["xt"], mask))', [*GRAD, *ADAPT_FAST]),
    _m("daaa_tf/method/daaa.py", "beta ignored (always 1)",
       'loss = terms["ce"] + terms["em"] + self.beta * terms["at"]',
       'loss = terms["ce"] + terms["em"] + terms["at"]', [*GRAD, *ADAPT_FAST]),
    _m("daaa_tf/method/daaa.py", "x~s takes the EM targets of the last real targets, not the first n_sf",
       'em += losses.em_loss_sum(q[:n_sf], logits["xsf"], mask[:n_sf])',
       'em += losses.em_loss_sum(q[-n_sf:], logits["xsf"], mask[-n_sf:])', [*GRAD, *ADAPT_FAST]),
    _m("daaa_tf/method/daaa.py", "L_CE without the synthetic targets x~t",
       'for xk, yk in (("xs", "ys"), ("xtf", "ytf")):', 'for xk, yk in (("xs", "ys"),):', [*GRAD, *ADAPT_FAST]),
    _m("daaa_tf/method/daaa.py", "pair family (x~s | x_t) replaced by (x~s | x~s)",
       '("xsf", "xsf"), ("xsf", "xt")', '("xsf", "xsf"), ("xsf", "xsf")', [*GRAD, *ADAPT_FAST]),
    _m("daaa_tf/method/daaa.py", "EM posteriors from the target net instead of M_post",
       'q = tf.nn.softmax(tf.cast(self.posterior(x["xt"], training=False)["logits"], tf.float32))',
       'q = tf.nn.softmax(tf.cast(self.target(x["xt"], training=False)["logits"], tf.float32))',
       [*GRAD, *ADAPT_FAST]),
    _m("daaa_tf/method/daaa.py", "terms divided by the local batch of one stream instead of the global B",
       "terms = {k: v / self.global_batch for k, v in sums.items()}",
       "terms = {k: v / (self.global_batch // 2) for k, v in sums.items()}", [*GRAD, *ADAPT_FAST]),
    _m("daaa_tf/method/daaa.py", "head learning-rate multiplier ignored",
       "grads = [g * self._multipliers[id(v)] if g is not None and id(v) in self._multipliers else g",
       "grads = [g if g is not None and id(v) in self._multipliers else g", [HEAD, ADAPT_RESNET]),
    _m("daaa_tf/method/daaa.py", "head multiplier not passed by build_daaa",
       "multipliers = ({i: cfg.head_lr_mult for i in head_variable_ids(target)}",
       "multipliers = ({i: 1.0 for i in head_variable_ids(target)}", [HEAD, ADAPT_RESNET]),
    _m("daaa_tf/models/__init__.py", "head_variable_ids finds no head",
       "if lyr.name in HEAD_LAYERS:", "if lyr.name in ():", [HEAD, ADAPT_RESNET]),
    _m("daaa_tf/method/posterior.py", "M_post sync does not switch L_EM on",
       "model.em_active.assign(1.0)", "model.em_active.assign(0.0)", [*GRAD, *ADAPT_FAST]),
    _m("daaa_tf/method/daaa.py", "trackers not scaled by the replicas (Mirrored logs half)",
       'self.trackers["loss"].update_state(loss * replicas)', 'self.trackers["loss"].update_state(loss)',
       [f"{ADAPT}::test_mirrored_two_cpus_equals_one_device"]),
    _m("daaa_tf/method/daaa.py", "source net left trainable",
       "self.source.trainable = False", "self.source.trainable = True", [*GRAD, *ADAPT_FAST]),
    _m("daaa_tf/method/losses.py", "L_EM with argmax (hard) targets",
       "q = tf.stop_gradient(tf.cast(posteriors, tf.float32))",
       "q = tf.one_hot(tf.argmax(posteriors, -1), tf.shape(posteriors)[-1])", [*GRAD, LOSSES, *ADAPT_FAST]),
    _m("daaa_tf/method/losses.py", "p_t test strict (> instead of >=)",
       "keep = tf.cast(tf.reduce_max(posteriors, axis=-1) >= threshold, tf.float32)",
       "keep = tf.cast(tf.reduce_max(posteriors, axis=-1) > threshold, tf.float32)", [*GRAD, LOSSES]),
    _m("daaa_tf/method/attention.py", "attention maps normalised by their L1 norm",
       "return a / (tf.norm(a, axis=1, keepdims=True) + eps)",
       "return a / (tf.reduce_sum(a, axis=1, keepdims=True) + eps)", [*GRAD, LOSSES, *ADAPT_FAST]),
    _m("daaa_tf/method/attention.py", "L2 pair distance squared",
       "return tf.sqrt(tf.reduce_sum(tf.square(d), axis=-1) + 1e-12)",
       "return tf.reduce_sum(tf.square(d), axis=-1) + 1e-12", [*GRAD, LOSSES, *ADAPT_FAST]),
    # ---- batch mixing -------------------------------------------------------------------------------------
    _m("daaa_tf/batching.py", "stream counts: x~t and x~s proportions swapped",
       "for s, p in zip(STREAMS, proportions)}", 'for s, p in zip(("s", "sf", "t", "tf"), proportions)}',
       [MIX, ADAPT_BAD, MIX_STAGE]),
    _m("daaa_tf/data/mixing.py", "mixer: x~t and x~s counts swapped",
       "n_s, n_tf, n_t, n_sf = (counts[s] for s in STREAMS)", "n_s, n_sf, n_t, n_tf = (counts[s] for s in STREAMS)",
       [MIX, MIX_STAGE]),
    _m("daaa_tf/batching.py", "stream counts: rounding remainder dropped",
       "for s in by_fraction[: b - sum(counts.values())]:", "for s in by_fraction[:0]:",
       [MIX, ADAPT_BAD, MIX_STAGE]),
    _m("daaa_tf/batching.py", "stream counts: per-replica counts taken as global counts",
       "return {s: n * num_replicas for s, n in local.items()}, None", "return local, None", [MIX]),
    _m("daaa_tf/batching.py", "stream counts: B not a multiple of R accepted",
       "if batch_size < 1 or batch_size % num_replicas:", "if batch_size < 1:", [MIX]),
    _m("daaa_tf/batching.py", "stream counts: n_sf <= n_t not enforced",
       'if counts["sf"] > counts["t"]:', 'if counts["sf"] > counts["t"] + 1000:',
       [MIX, ADAPT_BAD]),
    # ---- files and serving ---------------------------------------------------------------------------------
    _m("daaa_tf/io.py", "atomic_path: a failed write replaces the old file",
       "    try:\n        yield tmp\n        if _gf().isdir(path)",
       "    try:\n        yield path\n        if _gf().isdir(path)",
       ["tests/test_gfile.py::test_atomic_path_json_and_directories_on_ram"]),
    _m("daaa_tf/serving/writer.py", "serving_bytes: channels swapped",
       "        return tf.ensure_shape(image, [*size, 3])",
       "        return tf.ensure_shape(image[..., ::-1], [*size, 3])",
       ["tests/test_export.py::test_bytes_signature_equals_the_uint8_one_on_the_same_images"]),
    # ---- CycleGAN (Eq. 1-3) -------------------------------------------------------------------------------
    _m("daaa_tf/method/cyclegan.py", "CycleGAN without its cycle-consistency term",
       "g_total = self.cycle_weight * cycle", "g_total = 0.0 * cycle", [CG_REF, *CG_FAST, LOSSES]),
    _m("daaa_tf/method/cyclegan.py", "generator directions swapped (x~t = G_TS(x_s))",
       "fake_t = self.g_st(x_s, training=True)", "fake_t = self.g_ts(x_s, training=True)",
       [CG_REF, *CG_FAST]),
    _m("daaa_tf/method/cyclegan.py", "reconstruction of x_t through the wrong generator",
       "rec_t = self.g_st(fake_s, training=True)", "rec_t = self.g_ts(fake_s, training=True)",
       [CG_REF, *CG_FAST]),
    _m("daaa_tf/method/cyclegan.py", "G_ST's adversarial term against D_S",
       "g_st_adv = losses.generator_adversarial_loss(d_t_out[-n:], gan)",
       "g_st_adv = losses.generator_adversarial_loss(d_s_out[-n:], gan)", [CG_REF, *CG_FAST]),
    _m("daaa_tf/method/cyclegan.py", "D_T's real and fake swapped",
       "d_t_loss = losses.discriminator_loss(d_t_out[:n], d_t_out[n:n + shown_t], gan)",
       "d_t_loss = losses.discriminator_loss(d_t_out[n:n + shown_t], d_t_out[:n], gan)", [CG_REF, *CG_FAST]),
    _m("daaa_tf/method/cyclegan.py", "identity term through the wrong generator",
       "identity = (losses.identity_loss(x_t, self.g_st(x_t, training=True))",
       "identity = (losses.identity_loss(x_t, self.g_ts(x_t, training=True))", [CG_REF, *CG_FAST]),
    _m("daaa_tf/method/losses.py", "cycle loss L2 instead of L1",
       "return tf.reduce_mean(tf.abs(tf.cast(real, tf.float32) - tf.cast(reconstructed, tf.float32)))",
       "return tf.reduce_mean(tf.square(tf.cast(real, tf.float32) - tf.cast(reconstructed, tf.float32)))",
       [CG_REF, LOSSES]),
    # ---- export parity gate -------------------------------------------------------------------------------
    _m("daaa_tf/serving/parity.py", "int8 agreement bound loosened to accept anything",
       "int8_min_agreement=0.93, int8_max_accuracy_drop=2.0):", "int8_min_agreement=0.0, int8_max_accuracy_drop=2.0):",
       [GATE, *EXPORT_BOUNDS]),
    _m("daaa_tf/serving/parity.py", "dynamic-range accuracy-drop bound loosened",
       "dynamic_max_accuracy_drop=1.0, int8_min_agreement", "dynamic_max_accuracy_drop=100.0, int8_min_agreement",
       [GATE, *EXPORT_BOUNDS]),
    _m("daaa_tf/serving/parity.py", "top-1 agreement never checked",
       'if "min_top1_agreement" in bounds and row["top1_agreement"] < bounds["min_top1_agreement"]:',
       'if "min_top1_agreement" in bounds and row["top1_agreement"] < 0:',
       [GATE, *EXPORT_BOUNDS]),
    _m("daaa_tf/serving/parity.py", "accuracy drop never checked",
       'if "max_accuracy_drop" in bounds and row["accuracy_drop"] > bounds["max_accuracy_drop"]:',
       'if "max_accuracy_drop" in bounds and row["accuracy_drop"] > 100:',
       [GATE, *EXPORT_BOUNDS]),
    _m("daaa_tf/serving/parity.py", "accuracy drop with its sign flipped",
       '"accuracy_drop": float(100.0 * ((ref_top1 == labels).mean() - (class_ids == labels).mean())),',
       '"accuracy_drop": float(100.0 * ((class_ids == labels).mean() - (ref_top1 == labels).mean())),',
       [GATE, *EXPORT_BOUNDS]),
    _m("daaa_tf/serving/parity.py", "saved_model delta bound loosened",
       "def default_bounds(saved_model_max_delta=1e-5,", "def default_bounds(saved_model_max_delta=1.0,",
       [GATE, *EXPORT_BOUNDS]),
    # ---- data readers: skipped files reported --------------------------------------------------------------
    _m("daaa_tf/data/mnist_m.py", "corrupt PNGs skipped and counted but never reported",
       "    if skipped:\n        logging.warning(", "    if False:\n        logging.warning(",
       [SKIP, MM_CORRUPT]),
    _m("daaa_tf/data/office31.py", "corrupt JPEGs skipped and counted but never reported",
       'logging.warning("office31: skipped %d', 'logging.debug("office31: skipped %d',
       [SKIP, OFFICE_CORRUPT]),
    _m("daaa_tf/data/mnist_m.py", "skipped list names the kept files",
       "for i, n in enumerate(names) if i not in kept]", "for i, n in enumerate(names) if i in kept]",
       [SKIP, MM_CORRUPT]),
    # ---- opt-in additions (beyond the paper) --------------------------------------------------------------
    _m("daaa_tf/method/daaa.py", "colour augmentation also at evaluation",
       "if not (training and key in self.augment_keys):", "if key not in self.augment_keys:", [AUG]),
    _m("daaa_tf/method/daaa.py", "--augment_streams ignored (the clean image goes in)",
       "return preprocess(colour_augment(data[key], seed), self.arch)", "return x[key]", [AUG]),
    _m("daaa_tf/method/cyclegan.py", "semantic term logged but not in the generators' loss",
       "g_total += self.semantic_weight * semantic", "g_total += 0.0 * semantic", [SEM]),
    # ---- runs you can trust, images, per-stage settings --------------------------------------------------
    _m("daaa_tf/data/identity.py", "data identity of mnist ignores the idx files' contents",
       "[(os.path.basename(p), io.sha256_file(p)) for p in paths]", "[(os.path.basename(p), 0) for p in paths]",
       ["tests/test_fingerprints.py::test_data_identity_of_each_reader_changes_with_its_files",
        "tests/test_fingerprints.py::test_source_rerun_after_the_data_changed_is_refused_and_the_pipeline_invalidates"]),
    _m("daaa_tf/images.py", "16-bit grey saturated instead of scaled",
       "((v * 255 + 32767) // 65535)", "np.minimum(v, 255)",
       ["tests/test_images.py::test_16_bit_grey_is_scaled_not_saturated"]),
    _m("daaa_tf/settings.py", "a stage precision not given ignores the fallback",
       'elif f.metadata.get("fallback") and not f.default:', "elif False:",
       ["tests/test_flags.py::test_a_stage_precision_overrides_precision_and_otherwise_falls_back_to_it"]),
    _m("daaa_tf/data/pipelines.py", "int8 calibration set drawn by tf.data (depends on TF's global seed)",
       "order = np.random.default_rng(shuffle_seed).permutation(len(images))[:limit or None]",
       "order = np.asarray(list(tf.data.Dataset.range(len(images)).shuffle(len(images), seed=shuffle_seed)"
       ".as_numpy_iterator()))[:limit or None]",
       ["tests/test_export.py::test_calibration_set_depends_on_its_seed_alone"]),
    # ---- development targets, longer CycleGANs ------------------------------------------------------------
    _m("daaa_tf/data/mnist_m_recipe.py", "dead-leaves radii uniform instead of ~ r^-3",
       "return (lo - u * (lo - hi)) ** -0.5", "return r_min + u * (r_max - r_min)",
       ["tests/test_mnist_m_recipe.py::test_leaf_radius_is_the_inverse_of_the_r_cubed_law"]),
    _m("daaa_tf/data/mnist_m_recipe.py", "recoloured negative view not inverted",
       'out[f"{tag}.negative"] = 255 - view', 'out[f"{tag}.negative"] = view',
       ["tests/test_mnist_m_recipe.py::test_recoloured_views_are_the_six_channel_orders_negatives_and_half_sizes"]),
    _m("daaa_tf/stages/fingerprint.py", "a raised --cyclegan_steps refused instead of resumed",
       'EXTENDABLE = {"source": {"source_epochs"}, "cyclegan": {"cyclegan_steps"}}',
       'EXTENDABLE = {"source": {"source_epochs"}}',
       ["tests/test_cyclegan_trainer.py::test_cli_trains_translates_and_skips_when_complete"]),
    # ---- the cached source maps ----------------------------------------------------------------------------
    _m("daaa_tf/method/source_maps.py", "x~s maps cached from the real x_t instead of G_TS(x_t)",
       '"xsf": ("target", "translated", "isf")', '"xsf": ("target", "image", "isf")',
       [f"{SMAPS}::test_cache_rows_are_the_maps_of_x_s_and_of_the_translated_targets",
        f"{SMAPS}::test_cached_step_gives_the_uncached_losses_and_gradients"]),
    _m("daaa_tf/data/mixing.py", "record indices not the records' own",
       "records = records.enumerate()", "records = records.map(lambda r: (tf.constant(0, tf.int64), r))",
       [f"{SMAPS}::test_indexed_batches_are_the_same_batches_with_their_record_indices"]),
    _m("daaa_tf/data/mixing.py", "x~s indices not laid out replica-major like x~s",
       'out["isf"] = _first_per_replica(index[i], n_sf, r)', 'out["isf"] = index[i][:n_sf]',
       [f"{SMAPS}::test_indexed_batches_are_the_same_batches_with_their_record_indices"]),
    _m("daaa_tf/stages/adapt.py", "the stage builds the cache but feeds unindexed batches (the cache unused)",
       "with_index=cached))", "with_index=False))",
       [f"{SMAPS}::test_adaptation_stage_trains_from_the_cache"]),
    _m("daaa_tf/method/source_maps.py", "cached rows split into layers by the wrong widths",
       "return tf.split(rows, self.widths, axis=1)", "return tf.split(rows, self.widths[::-1], axis=1)",
       [f"{SMAPS}::test_cached_step_gives_the_uncached_losses_and_gradients"]),
    # ---- cutout, digit widths ------------------------------------------------------------------------------
    _m("daaa_tf/method/augment.py", "cutout square anchored at its centre's corner (not centred)",
       "lo = centre - side // 2", "lo = centre",
       ["tests/test_augment.py::test_cutout_greys_one_square_and_leaves_the_rest_as_colour_augment"]),
    _m("daaa_tf/method/daaa.py", "--augment_cutout not passed to the augmentation",
       "colour_augment(data[key], seed, self.augment_cutout)", "colour_augment(data[key], seed)",
       ["tests/test_augment.py::test_cutout_setting_reaches_the_target_view"]),
    _m("daaa_tf/method/augment.py", "cutout fills black instead of grey",
       "x = keep * x + (1.0 - keep) * 127.5", "x = keep * x",
       ["tests/test_augment.py::test_cutout_greys_one_square_and_leaves_the_rest_as_colour_augment"]),
    _m("daaa_tf/serving/writer.py", "the float32 export rebuild ignores the source network's widths",
       'attention_layers=spec["tap_names"], widths=spec["widths"])', 'attention_layers=spec["tap_names"])',
       ["tests/test_adapt_stage.py::test_digit_widths_come_from_the_source_network"]),
]

MUTATIONS = [{"id": i, **m} for i, m in enumerate(_LIST, start=1)]
