"""Images: publish() builds a new image for a tag and pushes it; aged() makes one whose Created lies days
back (a `docker save` with its config rewritten, loaded again).
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import time
import uuid

from .docker_cli import _run_docker
from .dockerfile import _dockerfile
from .files import _read
from .loopback import _engine_get
from .paths import _paths
from .registry_api import _split_ref
from .settings import BUILD_LABEL, REGISTRY


def _image_id(ref, sock=None):
    return _run_docker(['image', 'inspect', '--format', '{{.Id}}', ref], sock=sock).strip()


def _check_pushable(ref):
    if not _split_ref(ref)[0].startswith(REGISTRY + '/') or '@' in ref:
        raise ValueError('only tags under %s/ can be pushed to the sandbox registry: %r' % (REGISTRY, ref))


def _push(ref):
    _check_pushable(ref)
    repo = _split_ref(ref)[0]
    out = _run_docker(['push', ref])
    m = re.search(r'digest: (sha256:[0-9a-f]{64})', out)
    if m:
        return m.group(1)
    digests = json.loads(_run_docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref]) or '[]')
    for entry in digests or []:
        if entry.startswith(repo + '@'):
            return entry.split('@', 1)[1]
    return None


def _build(ref, labels=None, env=None, cmd=None, entrypoint=None, healthcheck=None, expose=None,
           volumes=None, user=None, workdir=None, stopsignal=None, base=None, files=None):
    p = _paths()
    os.makedirs(p.tmp, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=p.tmp) as tmp:
        ctx = os.path.join(tmp, 'ctx')
        os.makedirs(ctx)
        flag_labels = _dockerfile(ctx, base, labels, env, cmd, entrypoint, healthcheck, expose, volumes,
                                  user, workdir, stopsignal, files)
        flag_labels[BUILD_LABEL] = uuid.uuid4().hex
        iid = os.path.join(tmp, 'iid')
        args = ['build', '-q', '--force-rm', '--iidfile', iid, '-t', ref]
        for k, v in sorted(flag_labels.items()):
            args += ['--label', '%s=%s' % (k, v)]
        _run_docker(args + [ctx])
        image_id = (_read(iid, '') or '').strip()
    return image_id or _image_id(ref)


def publish(ref, *, labels=None, env=None, cmd=None, entrypoint=None, healthcheck=None, expose=None,
            volumes=None, user=None, workdir=None, stopsignal=None, base=None, files=None, push=True) -> dict:
    """Build a new image (always a new image ID) for ref and push it: "a newer image is published".

    labels/env: dicts; cmd/entrypoint: list (exec form) or str (shell form); healthcheck: dict
    {test: 'CMD-SHELL string' | list, interval, timeout, retries, start_period} (durations in
    seconds or Go strings like '5s') or 'NONE'; expose: list like [80, '53/udp']; volumes: list of
    paths; files: {'/path/in/image': text | bytes | (content, mode)}; base: FROM image (default
    BASE_IMAGE). Returns {'id': image id, 'digest': registry digest or None when push=False, 'ref'}.

    With push, the engine's own tag ends as if the image had been pushed from another machine: a
    tag that existed before points again at the image it had (`docker pull ref` brings the new
    one), a tag that did not exist is left on the new image (as if pulled). Without push the
    image is a local build and the tag moves to it.
    """
    if push:
        _check_pushable(ref)
    previous = _local_image_id(ref) if push else None
    try:
        image_id = _build(ref, labels, env, cmd, entrypoint, healthcheck, expose, volumes, user, workdir,
                          stopsignal, base, files)
        digest = _push(ref) if push else None
    finally:
        _restore_tag(ref, previous)
    return {'id': image_id, 'digest': digest, 'ref': ref}


def _local_image_id(ref):
    status, body = _engine_get(_paths(), '/images/%s/json' % ref)
    return json.loads(body).get('Id') if status == 200 else None


def _restore_tag(ref, previous):
    if previous and _local_image_id(ref) != previous:
        _run_docker(['tag', previous, ref])


def _rfc3339(dt):
    return dt.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def _retime_save_tar(raw, created):
    """Rewrite config 'created' (and history) in a `docker save` tar; legacy and OCI layouts."""
    src = tarfile.open(fileobj=io.BytesIO(raw), mode='r:')
    members = []
    data = {}
    for ti in src.getmembers():
        members.append(ti)
        if ti.isfile():
            data[ti.name] = src.extractfile(ti).read()
    manifest = json.loads(data['manifest.json'])
    renames = {}  # old path -> new path
    digest_map = {}  # old digest -> (new digest, new size)

    def blob_path(digest):
        return 'blobs/%s' % digest.replace(':', '/')

    for entry in manifest:
        old_path = entry['Config']
        config = json.loads(data[old_path])
        config['created'] = created
        for h in config.get('history') or []:
            h['created'] = created
        body = json.dumps(config, separators=(',', ':')).encode()
        new_hex = hashlib.sha256(body).hexdigest()
        if old_path.startswith('blobs/'):
            new_path = 'blobs/sha256/' + new_hex
            digest_map['sha256:' + old_path.rsplit('/', 1)[1]] = ('sha256:' + new_hex, len(body))
        else:
            new_path = new_hex + '.json'
        data[new_path] = body
        renames[old_path] = new_path
        entry['Config'] = new_path

    # OCI layout: manifests/indexes pointing at a changed blob change too, up to index.json
    changed = True
    while changed and digest_map:
        changed = False
        for name in list(data):
            if (not name.startswith('blobs/') or name in renames or name in renames.values()
                    or len(data[name]) > 1 << 20):
                continue
            try:
                doc = json.loads(data[name])
            except ValueError:
                continue
            if not isinstance(doc, dict) or not _swap_descriptors(doc, digest_map):
                continue
            body = json.dumps(doc, separators=(',', ':')).encode()
            new_digest = 'sha256:' + hashlib.sha256(body).hexdigest()
            old_digest = name[len('blobs/'):].replace('/', ':', 1)
            digest_map[old_digest] = (new_digest, len(body))
            data[blob_path(new_digest)] = body
            renames[name] = blob_path(new_digest)
            changed = True
    if 'index.json' in data and digest_map:
        index = json.loads(data['index.json'])
        if _swap_descriptors(index, digest_map):
            data['index.json'] = json.dumps(index, separators=(',', ':')).encode()
    data['manifest.json'] = json.dumps(manifest, separators=(',', ':')).encode()

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=tarfile.PAX_FORMAT) as dst:
        for ti in members:
            if ti.name in renames:
                continue
            if ti.isfile():
                ti.size = len(data[ti.name])
                dst.addfile(ti, io.BytesIO(data[ti.name]))
            else:
                dst.addfile(ti)
        for old, new in renames.items():
            ti = tarfile.TarInfo(new)
            ti.size, ti.mode, ti.mtime = len(data[new]), 0o644, int(time.time())
            dst.addfile(ti, io.BytesIO(data[new]))
    return out.getvalue()


def _swap_descriptors(doc, digest_map):
    changed = False
    if isinstance(doc, dict):
        if doc.get('digest') in digest_map:
            doc['digest'], size = digest_map[doc['digest']]
            if 'size' in doc:
                doc['size'] = size
            changed = True
        for v in doc.values():
            if isinstance(v, (dict, list)):
                changed = _swap_descriptors(v, digest_map) or changed
    elif isinstance(doc, list):
        for v in doc:
            changed = _swap_descriptors(v, digest_map) or changed
    return changed


def aged(ref, days, *, push=False, labels=None, env=None, cmd=None, entrypoint=None, healthcheck=None,
         expose=None, volumes=None, user=None, workdir=None, stopsignal=None, base=None, files=None) -> dict:
    """Like publish(), but the image's Created is `days` days ago (push only when push=True).

    The engine's tag is treated as in publish(): with push, a tag that existed before is put back.
    """
    if push:
        _check_pushable(ref)
    previous = _local_image_id(ref) if push else None
    try:
        return _aged(ref, days, push, labels, env, cmd, entrypoint, healthcheck, expose, volumes, user, workdir,
                     stopsignal, base, files)
    finally:
        _restore_tag(ref, previous)


def _aged(ref, days, push, labels, env, cmd, entrypoint, healthcheck, expose, volumes, user, workdir,
          stopsignal, base, files):
    built = publish(ref, labels=labels, env=env, cmd=cmd, entrypoint=entrypoint, healthcheck=healthcheck,
                    expose=expose, volumes=volumes, user=user, workdir=workdir, stopsignal=stopsignal,
                    base=base, files=files, push=False)
    created = _rfc3339(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=float(days)))
    raw = _run_docker(['save', ref], binary=True)
    _run_docker(['load', '-q'], input=_retime_save_tar(raw, created))
    image_id = _image_id(ref)
    if image_id != built['id']:
        _run_docker(['rmi', built['id']], check=False)
    digest = _push(ref) if push else None
    return {'id': image_id, 'digest': digest, 'ref': ref, 'created': created}
