#!/usr/bin/python3
"""test_man.py: the manual (man/simdgan.1) against what the command says.

Usage: test_man.py SIMDGAN MANPAGE SOURCE_DIR

- Every command that `simdgan --help` lists has its section (.SS "simdgan
  CMD ..."), and every flag that `simdgan CMD --help` prints appears in that
  command's section; the main help's flags (--help, --version) in the
  section for simdgan itself.
- Every environment variable the help texts name, and every one src/ reads
  (a "SIMDGAN_..." or "OMP_..." string literal), is under ENVIRONMENT.
- The exit statuses `simdgan train --help` lists, and 0, 2, 3, 130, 143,
  are under EXIT STATUS.
- The .TH line carries the version `simdgan --version` prints.
- man (or groff) renders the page with no warnings.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
from checks import check, finish  # noqa: E402

SIMDGAN, MANPAGE, SOURCE = (os.path.abspath(a) for a in sys.argv[1:4])




def help_text(*args):
    p = subprocess.run([SIMDGAN, *args, "--help"], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "simdgan %s --help exits 0 (got %d)" % (" ".join(args), p.returncode))
    return p.stdout


def plain(roff):
    """The page's text with roff escapes and font changes taken out."""
    s = roff.replace("\\-", "-").replace("\\(em", "-")
    s = re.sub(r"\\f[BIRP]", "", s)
    s = re.sub(r"\\[&|^/,]", "", s)
    return s


def sections(text, macro):
    """{title: body} for every `.SH title` or `.SS "title"`."""
    out = {}
    parts = re.split(r"^\.%s (.*)$" % macro, text, flags=re.M)
    for i in range(1, len(parts), 2):
        out[parts[i].strip().strip('"')] = parts[i + 1].split("\n.SH ")[0]
    return out


def has(body, token):
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(token), body) is not None


FLAG_RE = re.compile(r"(?:^|(?<=[\s,(\[]))(--?[a-zA-Z][a-zA-Z0-9-]*)")
ENV_RE = re.compile(r"\b((?:SIMDGAN|OMP)_[A-Z_]+)\b")


def main():
    with open(MANPAGE, encoding="utf-8") as f:
        page = plain(f.read())
    subs = sections(page, "SS")
    tops = sections(page, "SH")

    main_help = help_text()
    commands = re.findall(r"^  ([a-z]+)\s", main_help.split("commands:")[1].split("\n\n")[0], re.M)
    check(set(commands) >= {"train", "info", "sample", "eval", "classifier"},
          "simdgan --help lists train, info, sample, eval, classifier (got %s)" % commands)
    helps = {"": main_help}
    for cmd in commands:
        helps[cmd] = help_text(cmd)

    for cmd, text in helps.items():
        prefix = ("simdgan " + cmd).strip()
        titles = [t for t in subs if t == prefix or t.startswith(prefix + " ")]
        if cmd == "":
            titles = [t for t in subs if t.startswith("simdgan -")]
        check(len(titles) == 1, "one section for '%s' in the manual (got %s)" % (prefix, titles))
        if not titles:
            continue
        body = subs[titles[0]]
        flags = sorted(set(FLAG_RE.findall(text)))
        check(len(flags) >= 2 or cmd == "info", "%s --help lists flags (got %s)" % (prefix, flags))
        for flag in flags:
            check(has(body, flag), "the manual's '%s' section mentions %s" % (prefix, flag))

    env_section = tops.get("ENVIRONMENT", "")
    names = set()
    for text in helps.values():
        names |= set(ENV_RE.findall(text))
    for path in glob.glob(os.path.join(SOURCE, "src", "*.c")):
        with open(path, encoding="utf-8") as f:
            names |= set(re.findall(r'"((?:SIMDGAN|OMP)_[A-Z_]+)"', f.read()))
    check({"SIMDGAN_ISA", "SIMDGAN_FUSION", "SIMDGAN_MC", "SIMDGAN_KC", "SIMDGAN_NC",
           "SIMDGAN_DATA", "SIMDGAN_MODELS", "OMP_NUM_THREADS"} <= names,
          "the help texts and src/ name the known variables (got %s)" % sorted(names))
    for name in sorted(names):
        check(has(env_section, name), "ENVIRONMENT mentions %s" % name)

    exit_section = tops.get("EXIT STATUS", "")
    status_line = helps["train"].split("exit status:")[1]
    codes = set(re.findall(r"\b(\d+) ", status_line)) | {"0", "2", "3", "130", "143"}
    for code in sorted(codes, key=int):
        check(re.search(r"^\.B %s$" % code, exit_section, re.M) is not None,
              "EXIT STATUS lists %s" % code)

    version = subprocess.run([SIMDGAN, "--version"], capture_output=True, text=True).stdout.split()
    th = re.search(r"^\.TH .*$", page, re.M)
    check(th is not None and len(version) == 2 and '"simdgan %s"' % version[1] in th.group(0),
          ".TH carries the version %s (got %s)" % (version, th.group(0) if th else None))

    if shutil.which("man"):
        p = subprocess.run(["man", "--warnings", "-l", MANPAGE], capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="80"), timeout=60)
        check(p.returncode == 0 and not p.stderr.strip(),
              "man -l renders the page without warnings (rc %d): %s" % (p.returncode, p.stderr))
        check("simdgan classifier" in p.stdout, "the rendered page has the commands")
    elif shutil.which("groff"):
        p = subprocess.run(["groff", "-man", "-ww", "-z", MANPAGE], capture_output=True, text=True)
        check(p.returncode == 0 and not p.stderr.strip(), "groff renders the page: %s" % p.stderr)
    else:
        print("note: neither man nor groff is installed: the page was not rendered")

    return finish("test_man")


if __name__ == "__main__":
    sys.exit(main())
