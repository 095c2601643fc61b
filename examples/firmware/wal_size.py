#!/usr/bin/env python3
"""Flash taken by each crate in the firmware image, by source line.

Every instruction of `.text` is given to the innermost inlined frame that
lies in one of the workspace's crates (so the log's code inlined into the
application's `main` counts as the log's), else to compiler-builtins when a
frame lies there, else to the outermost frame. `.rodata` holds only the
log's tables and messages in this image (the baseline has none).

Build the image with line tables first (they do not change the code):

    CARGO_PROFILE_FIRMWARE_DEBUG=line-tables-only cargo build \\
      -p nori-wal-firmware-example --features firmware --bins \\
      --target thumbv7em-none-eabihf --profile firmware
    python3 examples/firmware/wal_size.py target/thumbv7em-none-eabihf/firmware/firmware

With `--max BYTES` before the path, it exits with status 1 when the WAL's
own code and tables take more than BYTES (CI checks the 16 KiB target so).

Needs `llvm-objdump`, `llvm-symbolizer` and `llvm-size` (Debian: `llvm`).
"""

import collections
import re
import subprocess
import sys

OURS = {
    "core/src/": "nori-wal-core",
    "backends/src/": "nori-wal-backends",
    "examples/": "the application (example, flash driver stand-in)",
}


def run(*args, stdin=None):
    return subprocess.run(args, input=stdin, capture_output=True, text=True, check=True).stdout


def owner(frames):
    for _, loc in frames:
        for prefix, name in OURS.items():
            if loc.startswith(prefix):
                return name
    if any("compiler-builtins" in loc for _, loc in frames):
        return "compiler-builtins (memcpy, memset, shifts)"
    return "Rust core library and startup" if frames else "unknown"


def main(elf):
    sections = {}
    for line in run("llvm-size", "-A", elf).splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("."):
            sections[parts[0]] = int(parts[1])
    addrs = []
    for line in run("llvm-objdump", "-d", "-j", ".text", "--no-show-raw-insn", elf).splitlines():
        m = re.match(r"^\s+([0-9a-f]+):\s", line)
        if m:
            addrs.append(int(m.group(1), 16))
    addrs = sorted(set(addrs))
    end = addrs[0] + sections[".text"]
    out = run("llvm-symbolizer", f"--obj={elf}", "--inlining", "--relativenames",
              stdin="\n".join(hex(a) for a in addrs))
    sizes = collections.Counter()
    for i, block in enumerate(out.strip().split("\n\n")):
        lines = block.split("\n")
        frames = [(lines[j], lines[j + 1]) for j in range(0, len(lines) - 1, 2)]
        nxt = addrs[i + 1] if i + 1 < len(addrs) else end
        sizes[owner(frames)] += nxt - addrs[i]
    print(f"{'.text':<8} {sections['.text']:>6} bytes")
    for name, size in sizes.most_common():
        print(f"  {size:>6}  {name}")
    rodata = sections.get(".rodata", 0)
    wal = sizes["nori-wal-core"] + sizes["nori-wal-backends"]
    if wal == 0:
        sys.exit("no .text byte is attributed to the WAL: the image has no line tables; "
                 "build it with CARGO_PROFILE_FIRMWARE_DEBUG=line-tables-only")
    print(f"{'.rodata':<8} {rodata:>6} bytes (the log's CRC table, zeros and messages)")
    print(f"the WAL's own code and tables: {wal} + {rodata} = {wal + rodata} bytes")
    return wal + rodata


if __name__ == "__main__":
    args = sys.argv[1:]
    limit = None
    if len(args) >= 2 and args[0] == "--max":
        limit = int(args[1])
        args = args[2:]
    own = main(args[0] if args else "target/thumbv7em-none-eabihf/firmware/firmware")
    if limit is not None and own > limit:
        print(f"the WAL's own code and tables take {own} bytes, over the limit of {limit}")
        sys.exit(1)
