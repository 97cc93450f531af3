"""Try to break every command: bad files, malicious shards, crafted checkpoints, kills, a full
disk and bad option values. Prints one table (cases tried, held, failed) and every failure.

A case *holds* when the command ends within its time limit, prints no Python traceback, and
either succeeds with a sound result (for inputs that must be skipped inside a build) or exits
non-zero with a short message. Run from the repository root with the ``[test]`` extra installed:

    python tools/break_everything.py [--work DIR] [--skip-train] [--skip-disk]

The full-disk case mounts a 3 MB tmpfs (needs root; skipped with a note otherwise).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

PY = sys.executable
OCC = [PY, "-c", "import sys; from occlusion_synth.cli import main; sys.exit(main())"]
TRAIN = [PY, "-c", "import sys; from fdsgan_train.cli import train_main; sys.exit(train_main())"]
EVAL = [PY, "-c", "import sys; from fdsgan_train.cli_eval import eval_main; sys.exit(eval_main())"]
INFER = [
    PY,
    "-c",
    "import sys; from fdsgan_train.cli_eval import infer_main; sys.exit(infer_main())",
]


@dataclass
class Outcome:
    category: str
    case: str
    held: bool
    why: str = ""


@dataclass
class Campaign:
    work: Path
    outcomes: list[Outcome] = field(default_factory=list)

    def record(self, category: str, case: str, held: bool, why: str = "") -> None:
        self.outcomes.append(Outcome(category, case, held, why))
        mark = "held  " if held else "FAILED"
        print(f"  {mark} {category}: {case}{' -- ' + why if why else ''}", flush=True)

    def run(self, argv: list[str], timeout: float = 120, env: dict | None = None):
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, env=env, errors="replace"
            )
        except subprocess.TimeoutExpired:
            return None

    def expect_error(
        self, category: str, case: str, argv: list[str], timeout: float = 120, ok: bool = False
    ):
        """Holds when the command exits non-zero, in time, with no traceback (``ok``: exit 0
        holds too, for a command that does not read the damaged part, e.g. ``stats``)."""
        done = self.run(argv, timeout)
        if done is None:
            return self.record(category, case, False, f"hung (> {timeout:.0f} s)")
        out = done.stdout + done.stderr
        if "Traceback" in out:
            return self.record(category, case, False, "traceback: " + _last(out))
        if done.returncode == 0 and not ok:
            return self.record(category, case, False, "exit 0")
        return self.record(category, case, True)


def _last(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1][:160] if lines else ""


# --------------------------------------------------------------------------- inputs


def _png_header_only(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def _face() -> Image.Image:
    import skimage.data

    return Image.fromarray(skimage.data.astronaut())


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def bad_files(folder: Path) -> dict[str, str]:
    """Write good faces and >= 20 kinds of bad file into ``folder``: name -> kind."""
    folder.mkdir(parents=True)
    face = _face()
    good = _jpeg(face, quality=90)
    for i in range(4):
        (folder / f"good_{i}.jpg").write_bytes(good)
    kinds: dict[str, Callable[[Path], None]] = {
        "zero_bytes.jpg": lambda p: p.write_bytes(b""),
        "text.jpg": lambda p: p.write_text("hello"),
        "truncated.jpg": lambda p: p.write_bytes(good[: len(good) // 2]),
        "corrupt_middle.jpg": lambda p: p.write_bytes(
            good[: len(good) // 2]
            + bytes(random.Random(1).randrange(256) for _ in range(4000))
            + good[len(good) // 2 + 4000 :]
        ),
        "alpha.png": lambda p: _save_rgba(face, p),
        "grey.png": lambda p: face.convert("L").save(p),
        "cmyk.jpg": lambda p: face.convert("CMYK").save(p, format="JPEG"),
        "sixteen.png": lambda p: Image.fromarray(
            np.asarray(face.convert("L"), np.uint16) * 257
        ).save(p),
        "tiny.jpg": lambda p: face.resize((32, 32)).save(p),
        "bomb_header.png": lambda p: p.write_bytes(_png_header_only(30000, 30000)),
        "no_face.jpg": lambda p: Image.new("RGB", (300, 300), (120, 90, 60)).save(p),
        "animated.gif": lambda p: face.save(p, save_all=True, append_images=[face]),
        "dangling.jpg": lambda p: p.symlink_to(folder / "missing.jpg"),
        "fifo.jpg": lambda p: os.mkfifo(p),
        "folder.jpg": lambda p: p.mkdir(),
        "random.png": lambda p: p.write_bytes(os.urandom(5000)),
        "stripe.jpg": lambda p: face.resize((1000, 8)).save(p),
        "html.png": lambda p: p.write_bytes(b"<html><body>not an image</body></html>"),
        "jpeg_named.png": lambda p: p.write_bytes(good),  # a good face, misnamed
        "bmp_face.bmp": lambda p: face.save(p),  # a good face
        "empty_gif.gif": lambda p: p.write_bytes(b"GIF89a"),
        "svg.png": lambda p: p.write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
    }
    for name, make in kinds.items():
        make(folder / name)
    os.link(folder / "good_0.jpg", folder / "hardlink.jpg")
    (folder / os.fsdecode(b"caf\xe9_\xff.jpg")).write_bytes(good)  # non-UTF-8 name
    return {n: n for n in kinds}


def _save_rgba(face: Image.Image, path: Path) -> None:
    rgba = face.convert("RGBA")
    a = np.full(face.size[::-1], 255, np.uint8)
    a[:50] = 0
    rgba.putalpha(Image.fromarray(a))
    rgba.save(path)


def campaign_bad_files(c: Campaign) -> None:
    folder = c.work / "faces"
    kinds = bad_files(folder)
    out = c.work / "mixed"
    done = c.run(
        [
            *OCC,
            "build",
            "--faces",
            str(folder),
            "--n",
            "12",
            "--out",
            str(out),
            "--no-landmark-cache",
            "--workers",
            "2",
        ],
        timeout=300,
    )
    if done is None or done.returncode != 0 or "Traceback" in done.stderr:
        why = "hung" if done is None else _last(done.stdout + done.stderr)
        c.record("bad files", "build over the mixed folder", False, why)
        return
    rejects = (out / "rejects.csv").read_text(encoding="utf-8", errors="replace")
    # usable files, and a folder named like an image (searched like any folder)
    good_kinds = {"jpeg_named.png", "bmp_face.bmp", "stripe.jpg", "folder.jpg"}
    for name in kinds:
        listed = name in rejects
        if name in good_kinds:
            c.record("bad files", f"{name} (usable or rejected, never a crash)", True)
        else:
            c.record("bad files", name, listed, "" if listed else "not in rejects.csv")
    ok = c.run([*OCC, "verify", str(out)], timeout=300)
    c.record(
        "bad files",
        "verify of the result",
        ok is not None and ok.returncode == 0,
        "" if ok and ok.returncode == 0 else _last((ok.stdout + ok.stderr) if ok else "hung"),
    )


# --------------------------------------------------------------------------- shards


def _members(tar_path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(tar_path) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar if m.isreg()]


def _write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> None:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def bad_shards(good: Path, folder: Path) -> dict[str, Path]:
    """Datasets (copies of ``good``) each with one damaged train shard: name -> dataset dir."""
    out: dict[str, Path] = {}
    shard = sorted((good / "shards").glob("train-*.tar"))[0]
    members = _members(shard)

    def variant(name: str, edit: Callable[[Path], None]) -> None:
        d = folder / name
        shutil.copytree(good, d)
        edit(d / "shards" / shard.name)
        out[name] = d

    def replace_member(suffix: str, data: bytes) -> Callable[[Path], None]:
        def edit(p: Path) -> None:
            new = []
            done = False
            for info, blob in members:
                if not done and info.name.endswith(suffix):
                    info = tarfile.TarInfo(info.name)
                    info.size = len(data)
                    blob, done = data, True
                new.append((info, blob))
            _write_tar(p, new)

        return edit

    def link_member(p: Path) -> None:
        info = tarfile.TarInfo("00000000.input.png")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        _write_tar(p, [(info, None), *members[1:]])

    def named(name: str) -> Callable[[Path], None]:
        def edit(p: Path) -> None:
            info = tarfile.TarInfo(name)
            info.size = 3
            _write_tar(p, [(info, b"abc"), *members])

        return edit

    variant("symlink member", link_member)
    variant("absolute path member", named("/tmp/evil.input.png"))
    variant("dot-dot member", named("../evil.input.png"))
    variant("truncated tar", lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 3]))
    variant("random bytes", lambda p: p.write_bytes(os.urandom(20000)))
    variant("empty file", lambda p: p.write_bytes(b""))
    variant("bomb header input", replace_member(".input.png", _png_header_only(30000, 30000)))
    small = io.BytesIO()
    Image.new("L", (128, 128)).save(small, format="PNG")
    variant("wrong-size mask", replace_member(".mask.png", small.getvalue()))
    variant("undecodable json", replace_member(".json", b"\xff{nope"))
    variant("json not an object", replace_member(".json", b"[1,2,3]"))
    variant("missing member", lambda p: _write_tar(p, members[1:]))
    variant("duplicate key", lambda p: _write_tar(p, members + members[:4]))

    def fifo(p: Path) -> None:
        p.unlink()
        os.mkfifo(p)

    variant("fifo named like a shard", fifo)
    return out


def campaign_shards(c: Campaign, good: Path, checkpoint: Path | None) -> None:
    for name, d in bad_shards(good, c.work / "bad_shards").items():
        c.expect_error("shards", f"{name} / verify", [*OCC, "verify", str(d)], timeout=60)
        c.expect_error(
            "shards",
            f"{name} / stats",
            [*OCC, "stats", str(d), "--out", str(d / "s.png")],
            timeout=60,
            ok=True,  # stats reads the manifest and masks only: damage elsewhere is no concern
        )
        c.expect_error(
            "shards",
            f"{name} / preview --from",
            [*OCC, "preview", "--from", str(d), "--n", "64", "--out", str(d / "p.png")],
            timeout=60,
        )
        if checkpoint is not None:
            c.expect_error(
                "shards",
                f"{name} / fdsgan-train",
                [
                    *TRAIN,
                    "--data",
                    str(d),
                    "--run-dir",
                    str(d / "run"),
                    "--config",
                    "tiny",
                    "--vgg-random-weights",
                    "--max-steps",
                    "2",
                ],
                timeout=120,
            )
            c.expect_error(
                "shards",
                f"{name} / fdsgan-eval",
                [
                    *EVAL,
                    "--checkpoint",
                    str(checkpoint),
                    "--data",
                    str(d),
                    "--split",
                    "train",
                    "--out",
                    str(d / "ev"),
                ],
                timeout=120,
            )


# --------------------------------------------------------------------------- checkpoints


def crafted_checkpoints(good: Path, folder: Path) -> dict[str, Path]:
    import pickle

    import torch

    folder.mkdir(parents=True)
    ck = torch.load(good, map_location="cpu", weights_only=True)
    out: dict[str, Path] = {}

    def put(name: str, data: bytes | None = None, obj: object = None) -> None:
        p = folder / f"{name.replace(' ', '_')}.pt"
        if data is not None:
            p.write_bytes(data)
        else:
            torch.save(obj, p)
        out[name] = p

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/pwned",))

    put("random bytes", os.urandom(4096))
    put("empty file", b"")
    put("truncated", good.read_bytes()[: good.stat().st_size // 2])
    put("pickle running os.system", pickle.dumps(Evil()))
    put("not a dict", obj=[1, 2, 3])
    put("no models", obj={"config": ck["config"]})
    huge = json.loads(json.dumps(ck["config"]))
    huge["model"]["base_channels"] = 4096
    put("base_channels 4096", obj={**ck, "config": huge})
    nan = {k: {n: t.clone() for n, t in v.items()} for k, v in ck["models"].items()}
    for v in nan.values():
        for t in v.values():
            if t.is_floating_point():
                t.fill_(float("nan"))
    put("nan weights", obj={**ck, "models": nan})
    return out


def campaign_checkpoints(c: Campaign, good_ckpt: Path, data: Path, photo: Path) -> None:
    mask = c.work / "photo.mask.png"
    w, h = Image.open(photo).size
    m = np.zeros((h, w), np.uint8)
    m[h // 2 : h // 2 + h // 8, w // 3 : 2 * w // 3] = 255
    Image.fromarray(m).save(mask)
    for name, p in crafted_checkpoints(good_ckpt, c.work / "ckpts").items():
        out = c.work / "inf" / f"{p.stem}.png"
        c.expect_error(
            "checkpoints",
            f"{name} / fdsgan-infer",
            [
                *INFER,
                "--checkpoint",
                str(p),
                "--image",
                str(photo),
                "--mask",
                str(mask),
                "--out",
                str(out),
            ],
        )
        if out.exists():
            c.record("checkpoints", f"{name} / fdsgan-infer wrote nothing", False, "image written")
        c.expect_error(
            "checkpoints",
            f"{name} / fdsgan-eval",
            [
                *EVAL,
                "--checkpoint",
                str(p),
                "--data",
                str(data),
                "--split",
                "train",
                "--out",
                str(c.work / "ev" / p.stem),
            ],
        )
        run = c.work / "runs" / p.stem
        (run / "checkpoints").mkdir(parents=True)
        shutil.copy(p, run / "checkpoints" / "last.pt")
        cfg = good_ckpt.parent.parent / "config.yaml"
        if cfg.is_file():
            shutil.copy(cfg, run / "config.yaml")
        c.expect_error(
            "checkpoints",
            f"{name} / fdsgan-train --resume",
            [
                *TRAIN,
                "--data",
                str(data),
                "--run-dir",
                str(run),
                "--resume",
                "--vgg-random-weights",
                "--max-steps",
                "3",
            ],
        )
    c.record(
        "checkpoints",
        "no crafted pickle ran code",
        not Path("/tmp/pwned").exists(),
        "/tmp/pwned exists",
    )


# --------------------------------------------------------------------------- kills


def _hashes(root: Path) -> dict[str, str]:
    files = sorted((root / "shards").glob("*.tar")) + [root / "manifest.parquet"]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def campaign_kills(c: Campaign, faces: str, train: bool) -> None:
    args = [
        "build",
        "--faces",
        faces,
        "--n",
        "120",
        "--shard-size",
        "10",
        "--seed",
        "5",
        "--workers",
        "2",
        "--no-landmark-cache",
    ]
    ref = c.work / "kill_ref"
    c.run([*OCC, *args, "--out", str(ref)], timeout=600)
    rng = random.Random(7)
    for k in range(4):
        out = c.work / f"killed_{k}"
        proc = subprocess.Popen(
            [*OCC, *args, "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(1.0, 8.0))
        os.killpg(proc.pid, signal.SIGKILL if k % 2 == 0 else signal.SIGINT)
        proc.wait()
        done = c.run([*OCC, *args, "--out", str(out), "--resume"], timeout=600)
        same = done is not None and done.returncode == 0 and _hashes(out) == _hashes(ref)
        sig = "SIGKILL" if k % 2 == 0 else "SIGINT"
        c.record(
            "kills",
            f"build {sig} #{k} then --resume is byte-identical",
            same,
            "" if same else _last((done.stdout + done.stderr) if done else "hung"),
        )
    if not train:
        return
    targs = [
        "--data",
        str(ref),
        "--config",
        "tiny",
        "--vgg-random-weights",
        "--set",
        "train.checkpoint_every=2",
    ]
    for k in range(2):
        run = c.work / f"train_killed_{k}"
        proc = subprocess.Popen(
            [*TRAIN, *targs, "--run-dir", str(run), "--max-steps", "40"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(6.0, 14.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if not (run / "checkpoints" / "last.pt").exists():
            c.record("kills", f"training SIGKILL #{k}", True, "killed before the first checkpoint")
            continue
        done = c.run(
            [*TRAIN, *targs, "--run-dir", str(run), "--max-steps", "12", "--resume"], timeout=600
        )
        ok = done is not None and done.returncode == 0 and "Traceback" not in done.stderr
        leftovers = list((run / "checkpoints").glob("*.tmp*"))
        c.record(
            "kills",
            f"training SIGKILL #{k} then --resume",
            ok and not leftovers,
            ""
            if ok and not leftovers
            else _last((done.stdout + done.stderr) if done else "hung") + f" {leftovers}",
        )


# --------------------------------------------------------------------------- disk


def campaign_disk(c: Campaign, faces: str) -> None:
    mnt = c.work / "small_disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)]).returncode:
        c.record("full disk", "mount a 3 MB tmpfs", True, "skipped: cannot mount (not root?)")
        return
    try:
        out = mnt / "data"
        done = c.run(
            [
                *OCC,
                "build",
                "--faces",
                faces,
                "--n",
                "200",
                "--shard-size",
                "20",
                "--out",
                str(out),
                "--workers",
                "1",
                "--no-landmark-cache",
            ],
            timeout=600,
        )
        text = "" if done is None else done.stdout + done.stderr
        ok = (
            done is not None
            and done.returncode != 0
            and "Traceback" not in text
            and "space" in text.lower()
        )
        c.record("full disk", "build on a full disk: one line, non-zero", ok, _last(text))
        finished = sorted(p.name for p in (out / "shards").glob("*.tar")) if out.exists() else []
        bad = [
            n
            for n in finished
            if subprocess.run([*OCC, "verify", str(out)], capture_output=True).returncode
            not in (0, 1)
        ]
        c.record("full disk", "finished shards left intact", not bad, str(bad))
    finally:
        subprocess.run(["umount", str(mnt)])


# --------------------------------------------------------------------------- options


def campaign_options(c: Campaign, data: Path, train: bool) -> None:
    base = ["build", "--faces", "demo", "--out", str(c.work / "opt_out")]
    cases = {
        "--n 0": ["--n", "0"],
        "--n -1": ["--n", "-1"],
        "--n abc": ["--n", "abc"],
        "--n 10**10": ["--n", "10000000000"],
        "--seed -1": ["--n", "2", "--seed", "-1"],
        "--seed 10**23": ["--n", "2", "--seed", str(10**23)],
        "--split nan,0,0": ["--n", "2", "--split", "nan,0,0"],
        "--split inf,1,1": ["--n", "2", "--split", "inf,1,1"],
        "--split 1,2": ["--n", "2", "--split", "1,2"],
        "--split a,b,c": ["--n", "2", "--split", "a,b,c"],
        "--split 0,0,0": ["--n", "2", "--split", "0,0,0"],
        "--workers -1": ["--n", "2", "--workers", "-1"],
        "--shard-size 0": ["--n", "2", "--shard-size", "0"],
        "--categories nope": ["--n", "2", "--categories", "nope"],
        "--categories sunglasses:-1": ["--n", "2", "--categories", "sunglasses:-1"],
        "--categories sunglasses:0": ["--n", "2", "--categories", "sunglasses:0"],
        "--max-occluders 0": ["--n", "2", "--max-occluders", "0"],
        "--max-occluders 99": ["--n", "2", "--max-occluders", "99"],
        "--max-outside 2": ["--n", "2", "--max-outside", "2"],
        "--occluders-dir missing": ["--n", "2", "--occluders-dir", "/nonexistent"],
        "--landmarks bogus": ["--n", "2", "--landmarks", "bogus"],
        "--faces missing": ["--n", "2", "--faces", "/nonexistent"],
        "--face-landmarker-task missing": [
            "--n",
            "2",
            "--landmarks",
            "mediapipe",
            "--face-landmarker-task",
            "/nonexistent.task",
        ],
    }
    for name, extra in cases.items():
        argv = [*OCC, *base, *extra]
        if name == "--faces missing":
            argv = [*OCC, "build", *extra, "--out", str(c.work / "opt_out")]
        c.expect_error("options", f"build {name}", argv, timeout=120)
    c.expect_error(
        "options",
        "build --resume --overwrite",
        [*OCC, *base, "--n", "2", "--resume", "--overwrite"],
    )
    some_file = c.work / "a_file"
    some_file.write_text("x")
    c.expect_error(
        "options",
        "build --out FILE",
        [*OCC, "build", "--faces", "demo", "--n", "2", "--out", str(some_file)],
    )
    c.expect_error(
        "options",
        "preview with both --faces and --from",
        [*OCC, "preview", "--faces", "demo", "--from", str(data), "--out", str(c.work / "p.png")],
    )
    c.expect_error("options", "verify missing", [*OCC, "verify", "/nonexistent"])
    c.expect_error(
        "options", "stats missing", [*OCC, "stats", "/nonexistent", "--out", str(c.work / "s.png")]
    )
    if not train:
        return
    tbase = [
        *TRAIN,
        "--data",
        str(data),
        "--run-dir",
        str(c.work / "tr"),
        "--config",
        "tiny",
        "--vgg-random-weights",
    ]
    tcases = {
        "data.batch_size=abc": ["--set", "data.batch_size=abc"],
        "optim.betas=5": ["--set", "optim.betas=5"],
        "optim.lr_g=-1": ["--set", "optim.lr_g=-1"],
        "model.n_down=12": ["--set", "model.n_down=12"],
        "train.max_steps=abc": ["--set", "train.max_steps=abc"],
        "unknown key": ["--set", "model.widht=3"],
        "--max-steps -5": ["--max-steps", "-5"],
        "--epochs 0": ["--epochs", "0"],
        "--batch-size 0": ["--batch-size", "0"],
        "--config nope": ["--config", "nope"],
        "--data missing": ["--data", "/nonexistent"],
    }
    for name, extra in tcases.items():
        c.expect_error("options", f"fdsgan-train {name}", [*tbase, *extra], timeout=120)


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/break_everything"))
    ap.add_argument("--skip-train", action="store_true", help="builder commands only")
    ap.add_argument("--skip-disk", action="store_true")
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    c = Campaign(args.work)
    train = not args.skip_train
    print("bad files", flush=True)
    campaign_bad_files(c)
    good = args.work / "good"
    c.run(
        [
            *OCC,
            "build",
            "--faces",
            "demo",
            "--n",
            "12",
            "--shard-size",
            "4",
            "--out",
            str(good),
            "--no-landmark-cache",
        ],
        timeout=300,
    )
    checkpoint = None
    if train:
        run = args.work / "good_run"
        c.run(
            [
                *TRAIN,
                "--data",
                str(good),
                "--run-dir",
                str(run),
                "--config",
                "tiny",
                "--vgg-random-weights",
                "--max-steps",
                "2",
            ],
            timeout=600,
        )
        checkpoint = run / "checkpoints" / "last.pt"
    print("shards", flush=True)
    campaign_shards(c, good, checkpoint)
    if checkpoint is not None and checkpoint.is_file():
        print("checkpoints", flush=True)
        import skimage.data

        photo = args.work / "photo.png"
        Image.fromarray(skimage.data.astronaut()).save(photo)
        campaign_checkpoints(c, checkpoint, good, photo)
    print("kills", flush=True)
    campaign_kills(c, "demo", train)
    if not args.skip_disk:
        print("full disk", flush=True)
        campaign_disk(c, "demo")
    print("options", flush=True)
    campaign_options(c, good, train)

    print("\n| category | tried | held | failed |\n|---|---|---|---|")
    cats = sorted({o.category for o in c.outcomes}, key=[o.category for o in c.outcomes].index)
    for cat in cats:
        rows = [o for o in c.outcomes if o.category == cat]
        held = sum(o.held for o in rows)
        print(f"| {cat} | {len(rows)} | {held} | {len(rows) - held} |")
    total = len(c.outcomes)
    held = sum(o.held for o in c.outcomes)
    print(f"| **all** | {total} | {held} | {total - held} |")
    failed = [o for o in c.outcomes if not o.held]
    for o in failed:
        print(f"FAILED {o.category}: {o.case} -- {o.why}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
