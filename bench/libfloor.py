#!/usr/bin/python3
"""libfloor.py: what the shared libraries cost in RSS before scrapeship does anything.

Issue #12 asks to look at what the shared libraries cost at start. This compiles a
program that does nothing but report its own memory (VmRSS, RssAnon, RssFile from
/proc/self/status, read in main) and links it against growing sets of the libraries
scrapeship uses, as Debian ships them. Every library a program links is mapped and
relocated, and its constructors run, before main, whatever the program then uses.
The last rows link exactly scrapeship's DT_NEEDED list (from `readelf -d BIN`), then
also start libcurl and OpenSSL as collector/main.c does, and skip GnuTLS' start as
collector/webtls.c does: that last row is the floor under any
scrapeship process on this system, before one series is scraped.

usage: libfloor.py [BIN]   (BIN: the scrapeship binary; default $SCRAPESHIP_BIN, else build/scrapeship)
Prints a Markdown table; needs gcc and the -dev packages of scripts/install-deps.sh.
"""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

PROG = r"""
#include <stdio.h>
#include <string.h>
#ifdef WITH_CURL_INIT
#include <curl/curl.h>
#include <openssl/ssl.h>
#endif
#ifdef LEAN
/* as collector/webtls.c: GnuTLS not started at load, by itself or by libmicrohttpd */
int _gnutls_global_init_skip(void) { return 1; }
int gnutls_global_init(void) { return 0; }
#endif
int main(void)
{
#ifdef WITH_CURL_INIT
#ifdef LEAN
    /* as collector/main.c: OpenSSL first, without strings, config or cipher names */
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_SSL_STRINGS | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS |
                         OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS, NULL);
#endif
    curl_global_init(CURL_GLOBAL_DEFAULT);
#endif
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6) || !strncmp(line, "RssAnon:", 8) || !strncmp(line, "RssFile:", 8))
            fputs(line, stdout);
    return 0;
}
"""


def needed(binary):
    out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)


def measure(work, name, libs, curl_init=False, lean=False, runs=5):
    src = os.path.join(work, "p.c")
    with open(src, "w") as f:
        f.write(PROG)
    exe = os.path.join(work, "p-%d" % abs(hash(name)))
    cmd = ["gcc", "-O2", "-o", exe, src] + (["-DWITH_CURL_INIT"] if curl_init else []) + (["-DLEAN"] if lean else [])
    cmd += ["-Wl,--no-as-needed"] + ["-l:" + lib for lib in libs]
    subprocess.run(cmd, check=True)
    best = None
    for _ in range(runs):  # the smallest of a few runs: page-cache state varies a little
        out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
        v = {k: int(n) for k, n in re.findall(r"(\w+):\s+(\d+) kB", out)}
        if best is None or v["VmRSS"] < best["VmRSS"]:
            best = v
    nlibs = len(subprocess.run(["ldd", exe], capture_output=True, text=True).stdout.splitlines())
    return name, nlibs, best


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SCRAPESHIP_BIN") or os.path.join(
        REPO, "build", "scrapeship")
    libs = needed(binary)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ss-libfloor-") as work:
        rows.append(measure(work, "libc only", []))
        rows.append(measure(work, "libcrypto + libssl", ["libssl.so.3", "libcrypto.so.3"]))
        rows.append(measure(work, "libmicrohttpd (its constructor initialises GnuTLS)", ["libmicrohttpd.so.12"]))
        rows.append(measure(work, "libcurl (Debian's: Kerberos, LDAP, ssh2, RTMP, GnuTLS...)", ["libcurl.so.4"]))
        rows.append(measure(work, "libcurl + curl_global_init", ["libcurl.so.4"], curl_init=True))
        rows.append(measure(work, "scrapeship's libraries (%d DT_NEEDED)" % len(libs), libs))
        rows.append(measure(work, "scrapeship's libraries + curl_global_init", libs, curl_init=True))
        rows.append(measure(work, "scrapeship's libraries + its start (GnuTLS not started, lean OpenSSL init, then curl_global_init)",
                            libs, curl_init=True, lean=True))
    print("| linked | libraries loaded | VmRSS MB | RssAnon MB | RssFile MB |")
    print("| --- | --- | --- | --- | --- |")
    for name, nlibs, v in rows:
        print("| %s | %d | %.1f | %.1f | %.1f |" % (name, nlibs, v["VmRSS"] / 1024, v["RssAnon"] / 1024,
                                                  v["RssFile"] / 1024))


if __name__ == "__main__":
    main()
