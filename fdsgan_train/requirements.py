"""The ``fdsgan-*`` commands need the ``[train]`` extra (torch, torchvision, tensorboard)."""

from __future__ import annotations

import importlib

from occlusion_synth.errors import UserError

INSTALL_HINT = 'pip install "occlusion-synth[train]" (from a clone: pip install -e ".[train]")'


def require_torch(command: str, modules: tuple[str, ...] = ("torch", "torchvision")) -> None:
    """Raise a one-line :class:`UserError` naming the extra when ``modules`` cannot be imported.

    Commands call this first, before importing anything that needs torch.
    """
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise UserError(
                f"{command} needs {name}, which is not installed: {INSTALL_HINT}"
            ) from None
        except OSError as exc:  # installed but broken (a missing shared library)
            raise UserError(f"{command}: {name} is installed but cannot load ({exc})") from None
