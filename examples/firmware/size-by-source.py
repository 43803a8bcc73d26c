#!/usr/bin/env python3
"""Where the firmware's flash goes, by source: each instruction's bytes are charged to the
innermost inlined frame that is framelink's own code (core or firmware), else to the library
function it came from.

    examples/firmware/size.sh                        # builds the release image
    examples/firmware/size-by-source.py [file|func|line|crate] [N]

`crate` groups by crate, charging each instruction to the innermost inlined frame (where it was
written): framelink-core, the firmware's own files, and each library. ELF=PATH
reads another image (the Ethernet firmware's: examples/firmware-net/size.sh prints its split).

Needs llvm-objdump (rustup component llvm-tools) and llvm-symbolizer (apt: llvm). The image is
built with debug info (profile.release.debug) so that inlined code keeps its source lines.
"""
import collections
import os
import pathlib
import re
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = str(HERE.parent.parent) + "/"
ELF = os.environ.get("ELF") or HERE / "target/thumbv7m-none-eabi/release/framelink-firmware"


def llvm_tool(name):
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
    host = re.search(r"host: (\S+)", subprocess.run(["rustc", "-vV"], capture_output=True, text=True).stdout)[1]
    return f"{sysroot}/lib/rustlib/{host}/bin/{name}"


def instruction_sizes():
    """Address -> size in bytes of every instruction in .text."""
    dis = subprocess.run([llvm_tool("llvm-objdump"), "-d", "--no-show-raw-insn", str(ELF)],
                         capture_output=True, text=True, check=True).stdout
    addrs = []
    for line in dis.splitlines():
        m = re.match(r"\s+([0-9a-f]+):\s", line)
        if m:
            addrs.append(int(m[1], 16))
        elif re.match(r"^[0-9a-f]+ <", line):
            addrs.append(None)  # a new symbol: the last instruction before it is sized as 2
    sizes = {}
    for i, a in enumerate(addrs):
        if a is None:
            continue
        nxt = addrs[i + 1] if i + 1 < len(addrs) and addrs[i + 1] is not None else a + 2
        sizes[a] = nxt - a if 0 < nxt - a <= 8 else 2
    return sizes


def crate_of(path):
    """The crate a source path (as `main` shortens it) belongs to."""
    if path.startswith("core/"):
        return "framelink-core"
    if path.startswith("examples/"):
        return "/".join(path.split("/")[:3])  # the firmware's own files, one by one
    m = re.match(r"([A-Za-z0-9_-]+?)-\d+\.\d+\.\d+[^/]*/", path)
    if m:
        return m[1]
    return path.split("/")[0]  # the standard library: core, alloc, compiler-builtins


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "file"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    if mode not in ("file", "func", "line", "crate"):
        sys.exit(__doc__)
    sizes = instruction_sizes()
    out = subprocess.run(["llvm-symbolizer", "--inlining", "--functions=linkage", "--demangle", "--obj", str(ELF)],
                         input="".join(f"{a:#x}\n" for a in sizes), capture_output=True, text=True,
                         check=True).stdout
    totals = collections.Counter()
    for addr, block in zip(sizes, out.strip("\n").split("\n\n")):
        lines = block.split("\n")
        frames = list(zip(lines[0::2], lines[1::2]))  # (function, file:line:column), innermost first
        ours = [f for f in frames if f[1].startswith(ROOT)]
        # By crate, the code is charged where it was written (the innermost frame), library code
        # inlined into ours included.
        function, location = frames[0] if mode == "crate" else ours[0] if ours else frames[-1]
        function = re.sub(r"::h[0-9a-f]{16}$", "", function)
        path, line = location.rsplit(":", 2)[:2] if location.count(":") >= 2 else (location, "?")
        path = path.removeprefix(ROOT)
        path = re.sub(r"^.*/(library|registry/src/[^/]+)/", "", path)
        totals[{"file": path, "func": function, "line": f"{path}:{line}", "crate": crate_of(path)}[mode]] += sizes[addr]
    for key, size in totals.most_common(count):
        print(f"{size:6} {key[:150]}")
    print(f"{sum(totals.values()):6} in all ({len(totals)} {mode}s)")


if __name__ == "__main__":
    main()
