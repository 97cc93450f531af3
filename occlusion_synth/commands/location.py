"""The click type of an option naming a dataset folder that may also be an fsspec URL."""

from __future__ import annotations

from typing import Any

import click

from occlusion_synth import storage
from occlusion_synth.errors import UserError


class LocationType(click.ParamType):
    """A local folder (given as a ``Path``) or a URL such as ``s3://bucket/prefix`` (a ``str``;
    ``file://`` URLs become paths). ``click.Path`` would fold ``s3://`` into ``s3:/``."""

    name = "dir|url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        try:
            return storage.location(value)
        except UserError as exc:
            self.fail(exc.message, param, ctx)


#: Folder or URL (``s3://``, ``gs://``, ``file://``).
LOCATION = LocationType()
