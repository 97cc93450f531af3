"""``occsynth``: the command line of the synthetic occluded-face dataset builder.

Each command lives in ``occlusion_synth/commands/<name>.py`` and is imported lazily, so
``occsynth --help`` is instant and no command pays for another's imports.
"""

from __future__ import annotations

import importlib

import click

from .cli_support import Group

#: command name -> module in occlusion_synth.commands holding a click command of that name
COMMANDS: dict[str, str] = {
    "build": "build",
    "preview": "preview",
    "verify": "verify",
    "stats": "stats",
    "occluders": "occluders",
    "landmarks": "landmarks",
    "merge": "merge",
    "screen": "screen",
}


class LazyGroup(Group):
    """A click group whose commands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            try:
                module = importlib.import_module(f"occlusion_synth.commands.{COMMANDS[name]}")
            except ModuleNotFoundError as exc:  # a command not written yet
                if exc.name == f"occlusion_synth.commands.{COMMANDS[name]}":
                    return None
                raise
            return getattr(module, name.replace("-", "_"))
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="occlusion-synth")
def main() -> None:
    """Build synthetic occluded-face datasets for de-occlusion models.

    Faces (a CelebA root, any folder of photos, or the bundled `demo` faces) are aligned to
    a 256x256 frame, landmarks are found, and occluders (sunglasses, masks, hands, scarves,
    microphones, cups...) are placed where they belong. Each sample is a triple: occluded
    input, exact binary mask, untouched target, written to WebDataset shards.

    \b
    Typical use:
      occsynth build --faces demo --n 64 --out demo_out
      occsynth build --faces /data/celeba --n 20000 --out data/
      occsynth preview --from data/ --out sheet.png
      occsynth verify data/
    """
