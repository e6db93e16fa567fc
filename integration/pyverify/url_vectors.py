"""Checks the verifier's URL rule (SPEC 7.2, 7.4) on the table of
protocol/testdata/url_vectors.json: usage: url_vectors.py VECTORS.json.

The verifier checks a url signal as valid on the wire when it equals its
v1 normal form (normalize_url, a port of Go's net/url). SPEC 7.4: a url is
valid if it is in v1 or v2 normal form, and every v2 normal form is a v1
normal form, so this is the whole rule; the verifier computes no index
keys, so it needs no v2 form (and no IDNA). For every vector: the v1 form
of the input is the vector's (or, where Go's net/url made something else
of an input, what it made), and both forms pass check_signal."""

import json
import sys

import staydown_verify as v


def url_signal(u):
    return {"_oneof": {"value": "url"}, "url": u}


def main(path):
    bad = 0
    vectors = json.load(open(path, encoding="utf-8"))
    for vec in vectors:
        want = vec.get("go_v1") or vec.get("v1") or vec.get("v2")
        try:
            got = v.normalize_url(vec["in"])
        except v.Malformed as err:
            got = None
            if want:
                print("%r: refused (%s), want %r" % (vec["in"], err, want))
                bad += 1
            continue
        if got != want:
            print("%r: %r, want %r" % (vec["in"], got, want))
            bad += 1
        for form in (vec.get("v1"), vec.get("v2")):
            if not form:
                continue
            try:
                v.check_signal("url", url_signal(form))
            except v.Malformed as err:
                print("%r: the normal form %r is refused: %s" % (vec["in"], form, err))
                bad += 1
    print("%d vectors, %d disagreements" % (len(vectors), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
