#!/usr/bin/python3
"""test_package.py: simdgan as installed, as a library and as a .deb.

Usage:
  test_package.py install BUILD PREFIX SOURCE LIBDIR PYTHONDIR CMAKE
  test_package.py example PREFIX SOURCE LIBDIR CMAKE CC [static]
  test_package.py deb BUILD OUTDIR SOURCE CPACK

- install: `cmake --install BUILD --prefix PREFIX` puts every file where
  cmake/install.cmake says (header and models byte for byte); the shared
  library exports exactly the functions simdgan.h marks SIMDGAN_API and its
  soname is libsimdgan.so.<SIMDGAN_API_VERSION>; simdgan.pc gives the
  prefix's flags; the installed binary, run from another folder with no
  SIMDGAN_MODELS, finds the evaluation classifiers relative to itself
  (`eval --real`) and trains an epoch; `man -l` renders the installed page.
- example: examples/train_one_epoch.c built against PREFIX with pkg-config
  and with CMake's find_package (shared, and with "static" the static
  library too) trains an epoch on synthetic data through the API: the log
  callback runs, 16 images become a 4x4 PGM, G and D are saved; every build
  writes the same bytes (one seed: the same run at any thread count).
- deb: `cpack -G DEB` makes a package whose Depends are run-time libraries
  (libc6, zlib1g, libjansson4, liblapacke, libhwloc15, libgomp1), none
  -dev; extracted with dpkg-deb -x, its binary runs from another folder
  (info, eval --real with the packaged classifiers, one epoch), its manual
  renders, and its Python module finds its library and models and trains.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from idx_data import write_dataset  # noqa: E402
from checks import check, finish  # noqa: E402

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable




def clean_env(**extra):
    """The environment without simdgan's variables, so that what is found is
    found the installed way."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SIMDGAN_") and k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
    env.update(extra)
    return env


def run(args, cwd=None, env=None, timeout=300):
    p = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env or clean_env(),
                       timeout=timeout)
    if p.returncode != 0:
        print("$ %s\n[rc %d]\n%s%s" % (" ".join(args), p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def api_names(source):
    with open(os.path.join(source, "include", "simdgan.h"), encoding="utf-8") as f:
        header = f.read()
    version = int(re.search(r"^#define SIMDGAN_API_VERSION (\d+)$", header, re.M).group(1))
    names = set(re.findall(r"^SIMDGAN_API\b[^(;]*?\b(simdgan_\w+)\s*\(", header, re.M))
    return names, version


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def check_binary(simdgan, work, what):
    """The installed or extracted binary, from a folder of its own."""
    data = write_dataset(os.path.join(work, "data"))
    cwd = os.path.join(work, "elsewhere")
    os.makedirs(cwd, exist_ok=True)
    p = run([simdgan, "--version"], cwd=cwd)
    check(p.returncode == 0 and p.stdout.startswith("simdgan "), "%s --version" % what)
    p = run([simdgan, "info"], cwd=cwd)
    check(p.returncode == 0 and "isa:" in p.stdout, "%s info" % what)
    p = run([simdgan, "eval", "--real", "--data", data, "--threads", "1"], cwd=cwd)
    check(p.returncode == 0 and "classifier-mnist" not in p.stderr and "FCD" in p.stdout,
          "%s eval --real finds the shipped classifier relative to the binary" % what)
    p = run([simdgan, "train", "--epochs", "1", "--data", data, "--out", "run", "--threads", "1",
             "--log-every", "1"], cwd=cwd)
    check(p.returncode == 0 and os.path.isfile(os.path.join(cwd, "run", "G.safetensors"))
          and p.stdout.count("Epoch [0/1]") == 2, "%s train --epochs 1 from another folder" % what)


def check_man(page, what):
    if not shutil.which("man"):
        print("note: man is not installed: %s not rendered" % page)
        return
    p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                       env=dict(os.environ, MANWIDTH="80"), timeout=60)
    check(p.returncode == 0 and not p.stderr.strip() and "simdgan train" in p.stdout,
          "man -l %s renders without warnings: %s" % (what, p.stderr))


def cmd_install(build, prefix, source, libdir, pydir, cmake):
    shutil.rmtree(prefix, ignore_errors=True)
    p = run([cmake, "--install", build, "--prefix", prefix])
    if not check(p.returncode == 0, "cmake --install %s --prefix %s" % (build, prefix)):
        return
    names, api = api_names(source)
    lib = os.path.join(prefix, libdir, "libsimdgan.so.%d" % api)
    expected = ["bin/simdgan", "include/simdgan.h", "%s/libsimdgan.so.%d" % (libdir, api),
                libdir + "/libsimdgan.so", libdir + "/libsimdgan.a",
                libdir + "/pkgconfig/simdgan.pc", libdir + "/cmake/simdgan/simdgan-config.cmake",
                libdir + "/cmake/simdgan/simdgan-config-version.cmake",
                libdir + "/cmake/simdgan/simdgan-targets.cmake",
                libdir + "/cmake/simdgan/simdgan-static-targets.cmake",
                "share/man/man1/simdgan.1.gz",
                "share/simdgan/models/classifier-mnist.safetensors",
                "share/simdgan/models/classifier-fashion-mnist.safetensors",
                "share/doc/simdgan/examples/train_one_epoch.c",
                pydir + "/simdgan/__init__.py", pydir + "/simdgan/_install.py"]
    for rel in expected:
        check(os.path.exists(os.path.join(prefix, rel)), "installed %s" % rel)
    check(os.access(os.path.join(prefix, "bin/simdgan"), os.X_OK), "bin/simdgan is executable")
    check(same_bytes(os.path.join(prefix, "include/simdgan.h"),
                     os.path.join(source, "include/simdgan.h")), "the header as in the tree")
    for m in ("classifier-mnist", "classifier-fashion-mnist"):
        check(same_bytes(os.path.join(prefix, "share/simdgan/models", m + ".safetensors"),
                         os.path.join(source, "models", m + ".safetensors")), "%s as in the tree" % m)

    # Exactly the API is exported, under the API's soname.
    p = run(["nm", "-D", "--defined-only", lib])
    exported = set(re.findall(r"^\S+ [TDBRVW] (\S+)$", p.stdout, re.M))
    check(len(names) >= 15, "simdgan.h declares the API (%d functions)" % len(names))
    check(exported == names, "libsimdgan exports exactly the API: extra %s, missing %s"
          % (sorted(exported - names), sorted(names - exported)))
    p = run(["readelf", "-d", lib])
    check("Library soname: [libsimdgan.so.%d]" % api in p.stdout, "soname libsimdgan.so.%d" % api)

    # pkg-config, from the installed .pc.
    env = clean_env(PKG_CONFIG_PATH=os.path.join(prefix, libdir, "pkgconfig"))
    p = run(["pkg-config", "--cflags", "--libs", "simdgan"], env=env)
    check(p.returncode == 0 and "-I%s/include" % prefix in p.stdout
          and "-L%s/%s" % (prefix, libdir) in p.stdout and "-lsimdgan" in p.stdout,
          "pkg-config --cflags --libs simdgan: %s" % p.stdout.strip())
    p = run(["pkg-config", "--static", "--libs", "simdgan"], env=env)
    check(p.returncode == 0 and "-ljansson" in p.stdout and "-llapacke" in p.stdout,
          "pkg-config --static --libs simdgan: %s" % p.stdout.strip())
    version = run([os.path.join(prefix, "bin/simdgan"), "--version"]).stdout.split()[-1]
    p = run(["pkg-config", "--modversion", "simdgan"], env=env)
    check(p.stdout.strip() == version, "pkg-config --modversion %s" % version)

    with tempfile.TemporaryDirectory() as work:
        check_binary(os.path.join(prefix, "bin/simdgan"), work, "the installed binary")
    check_man(os.path.join(prefix, "share/man/man1/simdgan.1.gz"), "the installed page")


def run_example(exe, data, out, what, env=None):
    p = run([exe, data, out, "1"], env=env)
    ok = check(p.returncode == 0, "%s runs" % what)
    check(ok and p.stdout.count("epoch 0/1, step ") == 2 and "2 steps, 2 log lines" in p.stdout,
          "%s: the log callback ran at both steps" % what)
    pgm = os.path.join(out, "samples-16.pgm")
    if check(os.path.isfile(pgm), "%s wrote samples-16.pgm" % what):
        with open(pgm, "rb") as f:
            body = f.read()
        check(body.startswith(b"P5\n112 112\n255\n") and len(body) == 15 + 112 * 112
              and len(set(body[15:])) > 8, "%s: a 4x4 grid of 28x28 images" % what)
    for name in ("G.safetensors", "D.safetensors"):
        check(os.path.isfile(os.path.join(out, name)), "%s saved %s" % (what, name))


def needed(exe):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", run(["readelf", "-d", exe]).stdout)


def cmd_example(prefix, source, libdir, cmake, cc, static):
    _, api = api_names(source)
    soname = "libsimdgan.so.%d" % api
    example = os.path.join(source, "examples")
    with tempfile.TemporaryDirectory() as work:
        data = write_dataset(os.path.join(work, "data"))
        outs = []

        # pkg-config and the compiler alone.
        env = clean_env(PKG_CONFIG_PATH=os.path.join(prefix, libdir, "pkgconfig"))
        flags = run(["pkg-config", "--cflags", "--libs", "simdgan"], env=env).stdout.split()
        exe = os.path.join(work, "ex-pkgconfig")
        p = run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror",
                 os.path.join(example, "train_one_epoch.c"), "-o", exe] + flags)
        if check(p.returncode == 0, "the example builds with pkg-config's flags"):
            check(soname in needed(exe), "the pkg-config build links %s" % soname)
            outs.append(os.path.join(work, "out-pkgconfig"))
            run_example(exe, data, outs[-1], "the pkg-config build",
                        clean_env(LD_LIBRARY_PATH=os.path.join(prefix, libdir)))

        # CMake's find_package, shared and static.
        for kind in ["shared"] + (["static"] if static else []):
            b = os.path.join(work, "build-" + kind)
            p = run([cmake, "-S", example, "-B", b, "-DCMAKE_PREFIX_PATH=" + prefix,
                     "-DCMAKE_C_COMPILER=" + cc, "-DSIMDGAN_STATIC=" + ("ON" if kind == "static" else "OFF")])
            if p.returncode == 0:
                p = run([cmake, "--build", b])
            if not check(p.returncode == 0, "the example builds with find_package (%s)" % kind):
                continue
            exe = os.path.join(b, "train_one_epoch")
            libs = needed(exe)
            check((soname in libs) == (kind == "shared"),
                  "the %s build %s %s (NEEDED %s)" % (kind, "links" if kind == "shared" else "does not need",
                                                      soname, libs))
            outs.append(os.path.join(work, "out-" + kind))
            run_example(exe, data, outs[-1], "the find_package build (%s)" % kind)

        for out in outs[1:]:
            for name in ("G.safetensors", "D.safetensors", "samples-16.pgm"):
                a, b = os.path.join(outs[0], name), os.path.join(out, name)
                check(os.path.isfile(a) and os.path.isfile(b) and same_bytes(a, b),
                      "%s from %s equals the pkg-config build's" % (name, os.path.basename(out)))


def cmd_deb(build, outdir, source, cpack):
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    p = run([cpack, "-G", "DEB", "--config", os.path.join(build, "CPackConfig.cmake"), "-B", outdir])
    debs = [f for f in os.listdir(outdir) if f.endswith(".deb")]
    if not check(p.returncode == 0 and len(debs) == 1, "cpack -G DEB makes one .deb (%s)" % debs):
        return
    deb = os.path.join(outdir, debs[0])
    _, api = api_names(source)

    fields = {}
    for line in run(["dpkg-deb", "-f", deb, "Package", "Version", "Depends"]).stdout.splitlines():
        key, _, value = line.partition(": ")
        fields[key] = value
    depends = {re.split(r"[ (]", d.strip())[0] for d in fields.get("Depends", "").split(",") if d.strip()}
    print("Depends:", fields.get("Depends"))
    with open(os.path.join(build, "CMakeCache.txt"), encoding="utf-8") as f:
        cache = f.read()
    want = {"libc6", "zlib1g", "libjansson4", "liblapacke"}
    if re.search(r"^SIMDGAN_HWLOC:BOOL=ON$", cache, re.M):
        want.add("libhwloc15")
    if re.search(r"^SIMDGAN_OPENMP:BOOL=ON$", cache, re.M):
        want.add("libgomp1")
    check(fields.get("Package") == "simdgan", "Package: simdgan")
    check(want <= depends, "Depends has %s (got %s)" % (sorted(want), sorted(depends)))
    check(not any(d.endswith("-dev") for d in depends), "Depends has no -dev package")

    listing = run(["dpkg-deb", "-c", deb]).stdout
    for rel in ("./usr/bin/simdgan", "/libsimdgan.so.%d " % api, "./usr/include/simdgan.h",
                "/pkgconfig/simdgan.pc", "/cmake/simdgan/simdgan-config.cmake",
                "./usr/share/man/man1/simdgan.1.gz",
                "./usr/share/simdgan/models/classifier-mnist.safetensors",
                "./usr/lib/python3/dist-packages/simdgan/__init__.py"):
        check(rel in listing, "the package holds %s" % rel.strip())

    root = os.path.join(outdir, "root")
    p = run(["dpkg-deb", "-x", deb, root])
    if not check(p.returncode == 0, "dpkg-deb -x"):
        return
    simdgan = os.path.join(root, "usr/bin/simdgan")
    p = run(["ldd", simdgan])
    check(p.returncode == 0 and "not found" not in p.stdout, "the packaged binary's libraries resolve")
    version = run([simdgan, "--version"]).stdout.split()
    check(version[-1:] == [fields.get("Version")], "Version: %s is the binary's (%s)" %
          (fields.get("Version"), version))
    with tempfile.TemporaryDirectory() as work:
        check_binary(simdgan, work, "the packaged binary")
        check_man(os.path.join(root, "usr/share/man/man1/simdgan.1.gz"), "the packaged page")
        data = write_dataset(os.path.join(work, "pydata"))
        script = (
            "import simdgan, simdgan._native as n\n"
            "t = simdgan.Trainer(data=%r, out='pyrun', threads=1, eval_every=1, eval_n=100)\n"
            "assert t.fit(1) == simdgan.OK\n"
            "x = t.sample(8, 1)\n"
            "t.close()\n"
            "print(simdgan.__file__, n.library()._name, x.shape)\n" % data)
        env = clean_env(PYTHONPATH=os.path.join(root, "usr/lib/python3/dist-packages"),
                        PYTHONDONTWRITEBYTECODE="1")
        p = run([PYTHON, "-c", script], cwd=work, env=env)
        out = p.stdout.split()
        check(p.returncode == 0 and len(out) == 5 and all(o.startswith(root) for o in out[:2])
              and out[2:] == ["(8,", "28,", "28)"],
              "the packaged Python module loads the packaged library and trains: %s" % p.stdout)


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "install":
        cmd_install(*args)
    elif mode == "example":
        cmd_example(*args[:5], static=args[5:] == ["static"])
    elif mode == "deb":
        cmd_deb(*args)
    else:
        sys.exit("test_package.py: unknown mode %s; expected install, example or deb" % mode)
    return finish("test_package")


if __name__ == "__main__":
    sys.exit(main())
