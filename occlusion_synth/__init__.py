"""occlusion_synth: build synthetic occluded-face datasets (CLI: ``occsynth``)."""

__version__ = "0.1.0"
