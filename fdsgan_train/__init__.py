"""fdsgan_train: the two-stage FD-StackGAN de-occlusion model, its trainer and evaluation."""

__version__ = "0.1.0"
