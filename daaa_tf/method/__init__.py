"""The paper's method: attention (Eq. 4-5), losses (Eq. 1-3, 6, 12), M_post (Eq. 11), schedules, the DAAA model
(Eq. 13), the CycleGAN model, the RevGrad baseline.
"""
