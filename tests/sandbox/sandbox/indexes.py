"""Multi-platform images: publish_index() writes an OCI image index or a Docker manifest list over one image
per platform (this host's built by the engine, the others through the registry API), with attestations.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import uuid

from .docker_cli import _run_docker
from .errors import SandboxError
from .images import _build, _check_pushable, _local_image_id, _push, _rfc3339
from .loopback import _engine_get
from .paths import _paths
from .registry_api import (MANIFEST_ACCEPT, _blob, _blob_mount, _blob_upload, _canonical, _manifest_put,
                           _registry_call, _repo_name, _sha256)
from .settings import BASE_IMAGE, BUILD_LABEL, REGISTRY


MT_OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
MT_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
MT_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
MT_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
MT_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
MT_DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
INDEX_TYPES = {'oci': MT_OCI_INDEX, 'docker': MT_DOCKER_LIST, MT_OCI_INDEX: MT_OCI_INDEX, MT_DOCKER_LIST: MT_DOCKER_LIST}
ATTESTATION_PLATFORM = 'unknown/unknown'
# the variant a platform gets when none is given (as `docker buildx` and the registries name them)
_DEFAULT_VARIANTS = {'arm64': 'v8', 'arm': 'v7'}


def _parse_platform(platform):
    parts = str(platform).split('/')
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError('a platform is os/architecture[/variant], not %r' % (platform,))
    plat = {'architecture': parts[1], 'os': parts[0]}
    variant = parts[2] if len(parts) == 3 else _DEFAULT_VARIANTS.get(parts[1])
    if variant:
        plat['variant'] = variant
    return plat


def _platform_key(plat):
    return '/'.join([plat.get('os', ''), plat.get('architecture', '')] + ([plat['variant']] if plat.get('variant') else []))


def _same_platform(a, b):
    """a, b: platform dicts; a variant missing on one side matches (linux/arm64 is linux/arm64/v8)."""
    return (a.get('os') == b.get('os') and a.get('architecture') == b.get('architecture')
            and (not a.get('variant') or not b.get('variant') or a['variant'] == b['variant']))


def _native_platform():
    _status, body = _engine_get(_paths(), '/version')
    version = json.loads(body or '{}')
    return {'os': version.get('Os') or 'linux', 'architecture': version.get('Arch') or 'amd64'}


def _descriptor_info(name, desc):
    """{'digest', 'size', 'media_type', 'config', 'platform'} of a platform manifest in repository name."""
    raw = _registry_call('GET', '/v2/%s/manifests/%s' % (name, desc['digest']),
                         headers={'Accept': MANIFEST_ACCEPT})[2]
    manifest = json.loads(raw)
    config = manifest.get('config') or {}
    plat = desc.get('platform')
    if not plat and config.get('digest'):
        cfg = json.loads(_blob(name, config['digest']))
        plat = {k: cfg[k] for k in ('os', 'architecture', 'variant') if cfg.get(k)}
    return {'digest': desc['digest'], 'size': len(raw), 'media_type': manifest.get('mediaType') or desc.get('mediaType'),
            'config': config.get('digest'), 'platform': plat or {}}


def _current_platform_manifests(name, tag):
    """The platform manifests the tag serves now: [(platform dict, info)] from an index, or the one manifest."""
    status, hdrs, raw = _registry_call('GET', '/v2/%s/manifests/%s' % (name, tag), headers={'Accept': MANIFEST_ACCEPT},
                                       expect=(200, 404))
    if status == 404:
        return []
    doc = json.loads(raw)
    if doc.get('manifests') is not None:
        out = []
        for desc in doc['manifests']:
            annotations = desc.get('annotations') or {}
            if annotations.get('vnd.docker.reference.type') == 'attestation-manifest':
                continue
            info = _descriptor_info(name, desc)
            out.append((desc.get('platform') or info['platform'], info))
        return out
    info = _descriptor_info(name, {'digest': hdrs.get('docker-content-digest') or _sha256(raw),
                                   'mediaType': doc.get('mediaType')})
    return [(info['platform'], info)]


def _foreign_image(name, plat, family, labels=None, env=None, cmd=None, entrypoint=None, **_ignored):
    """An image for a platform this host cannot run, pushed through the registry API: the base image's layers
    (mounted, no data moves) under a config of that platform. family: 'oci' or 'docker' (the media types)."""
    base_name, base_tag = _repo_name(BASE_IMAGE)
    base = [info for _p, info in _current_platform_manifests(base_name, base_tag)]
    if not base:
        raise SandboxError('the base image %s is not in the registry (run up())' % BASE_IMAGE)
    base_manifest = json.loads(_registry_call('GET', '/v2/%s/manifests/%s' % (base_name, base[0]['digest']),
                                              headers={'Accept': MANIFEST_ACCEPT})[2])
    base_config = json.loads(_blob(base_name, base_manifest['config']['digest']))
    now = _rfc3339(datetime.datetime.now(datetime.timezone.utc))
    container = dict(base_config.get('config') or {})
    container['Labels'] = dict(container.get('Labels') or {}, **{str(k): str(v) for k, v in (labels or {}).items()})
    container['Labels'][BUILD_LABEL] = uuid.uuid4().hex
    if env:
        container['Env'] = list(container.get('Env') or []) + ['%s=%s' % (k, v) for k, v in env.items()]
    if cmd is not None:
        container['Cmd'] = list(cmd) if isinstance(cmd, (list, tuple)) else ['/bin/sh', '-c', cmd]
    if entrypoint is not None:
        container['Entrypoint'] = (list(entrypoint) if isinstance(entrypoint, (list, tuple))
                                   else ['/bin/sh', '-c', entrypoint])
    config = {'architecture': plat['architecture'], 'os': plat['os']}
    if plat.get('variant'):
        config['variant'] = plat['variant']
    config.update({'created': now, 'config': container, 'rootfs': base_config['rootfs'],
                   'history': list(base_config.get('history') or []) + [
                       {'created': now, 'created_by': 'sandbox.publish_index %s' % _platform_key(plat),
                        'empty_layer': True}]})
    config_raw = _canonical(config)
    config_digest = _blob_upload(name, config_raw)
    layers = []
    for layer in base_manifest['layers']:
        _blob_mount(name, layer['digest'], base_name)
        gzip = layer.get('mediaType', '').endswith('gzip')
        if family == 'oci':
            mt = 'application/vnd.oci.image.layer.v1.tar' + ('+gzip' if gzip else '')
        else:
            mt = 'application/vnd.docker.image.rootfs.diff.tar' + ('.gzip' if gzip else '')
        layers.append({'mediaType': mt, 'size': layer['size'], 'digest': layer['digest']})
    manifest = {'schemaVersion': 2,
                'mediaType': MT_OCI_MANIFEST if family == 'oci' else MT_DOCKER_MANIFEST,
                'config': {'mediaType': MT_OCI_CONFIG if family == 'oci' else MT_DOCKER_CONFIG,
                           'size': len(config_raw), 'digest': config_digest},
                'layers': layers}
    raw = _canonical(manifest)
    digest = _manifest_put(name, _sha256(raw), raw, manifest['mediaType'])
    return {'digest': digest, 'size': len(raw), 'media_type': manifest['mediaType'], 'config': config_digest,
            'platform': {k: config[k] for k in ('os', 'architecture', 'variant') if config.get(k)}}


def _native_image(name, plat, options):
    """An image this host runs, built by the sandbox engine as publish() builds (FROM the base image), pushed to
    a scratch repository, then made part of repository name by digest (the manifest's bytes as the engine
    pushed them); the scratch repository is deleted again. Returns its info and the local image ID."""
    scratch = '%s/sandbox/scratch-%s' % (REGISTRY, uuid.uuid4().hex[:12])
    scratch_ref = scratch + ':' + plat['architecture']
    scratch_name = _repo_name(scratch_ref)[0]
    try:
        image_id = _build(scratch_ref, **options)
        _push(scratch_ref)
        pushed = _current_platform_manifests(scratch_name, plat['architecture'])
        info = next((i for p, i in pushed if _same_platform(p, plat)), None) or pushed[0][1]
        manifest_raw = _registry_call('GET', '/v2/%s/manifests/%s' % (scratch_name, info['digest']),
                                      headers={'Accept': MANIFEST_ACCEPT})[2]
        manifest = json.loads(manifest_raw)
        for blob in [manifest['config']] + list(manifest.get('layers') or []):
            _blob_mount(name, blob['digest'], scratch_name)
        _manifest_put(name, info['digest'], manifest_raw, manifest.get('mediaType') or MT_DOCKER_MANIFEST)
    finally:
        _run_docker(['rmi', scratch_ref], check=False)
        shutil.rmtree(os.path.join(_paths().reg_root, 'docker', 'registry', 'v2', 'repositories', scratch_name),
                      ignore_errors=True)
    info['platform'] = dict(plat)
    return info, image_id


def _attestation(name, subject_digest):
    """An attestation manifest as BuildKit attaches it (an in-toto statement about subject_digest)."""
    statement = _canonical({'_type': 'https://in-toto.io/Statement/v0.1',
                            'predicateType': 'https://spdx.dev/Document',
                            'subject': [{'name': 'sandbox', 'digest': {'sha256': subject_digest.split(':', 1)[1]}}],
                            'predicate': {'spdxVersion': 'SPDX-2.3', 'name': 'sandbox-' + uuid.uuid4().hex}})
    layer_digest = _blob_upload(name, statement)
    config_raw = _canonical({'architecture': 'unknown', 'os': 'unknown', 'config': {},
                             'rootfs': {'type': 'layers', 'diff_ids': [layer_digest]}})
    config_digest = _blob_upload(name, config_raw)
    manifest = {'schemaVersion': 2, 'mediaType': MT_OCI_MANIFEST,
                'config': {'mediaType': MT_OCI_CONFIG, 'digest': config_digest, 'size': len(config_raw)},
                'layers': [{'mediaType': 'application/vnd.in-toto+json', 'digest': layer_digest,
                            'size': len(statement), 'annotations': {'in-toto.io/predicate-type':
                                                                    'https://spdx.dev/Document'}}]}
    raw = _canonical(manifest)
    digest = _manifest_put(name, _sha256(raw), raw, MT_OCI_MANIFEST)
    return {'mediaType': MT_OCI_MANIFEST, 'digest': digest, 'size': len(raw),
            'platform': {'architecture': 'unknown', 'os': 'unknown'},
            'annotations': {'vnd.docker.reference.digest': subject_digest,
                            'vnd.docker.reference.type': 'attestation-manifest'}}


def publish_index(ref, platforms=('linux/amd64', 'linux/arm64'), *, push_only=None, media_type='oci',
                  attestation=False, **publish_options) -> dict:
    """Publish ref as a multi-platform image: an OCI image index (media_type='oci') or a Docker manifest list
    (media_type='docker') over one image per platform, written with a PUT of the tag after the platform
    manifests were pushed by digest.

    The platform of this host (linux/amd64 here) is built by the sandbox engine as publish() builds it
    (publish_options: labels, env, cmd, ... as publish()) and can run here; any other platform ('linux/arm64'
    is linux/arm64/v8) is the base image's layers under a config of that platform, pushed through the registry
    API (its labels, env, cmd, entrypoint follow publish_options), never run here. platforms without this
    host's own give an index this host cannot pull.

    push_only: the platforms that get a new image; every other platform of platforms keeps the manifest the tag
    serves now (byte-identical), taken from the tag's index or, when the tag is a single manifest, that
    manifest (so a plain tag becomes an index over the same image). attestation=True adds, for each platform
    image, an attestation manifest entry (platform unknown/unknown, annotation
    vnd.docker.reference.type=attestation-manifest) as BuildKit does.

    The engine's own tag is treated as publish() treats it: a tag that existed stays on its image; a tag that
    did not exist is pulled (as if pulled: on the containerd store, the image is then the index).

    Returns {'ref', 'digest' (of the index), 'media_type', 'id' (the local image built for this host, or None),
    'manifests': {platform: {'digest', 'config', 'size', 'media_type', 'platform', 'new'}},
    'attestations': {platform: digest}}.
    """
    _check_pushable(ref)
    index_type = INDEX_TYPES.get(media_type)
    if not index_type:
        raise ValueError('media_type is oci or docker (or an index media type), not %r' % (media_type,))
    family = 'oci' if index_type == MT_OCI_INDEX else 'docker'
    name, tag = _repo_name(ref)
    wanted = [(str(p), _parse_platform(p)) for p in platforms]
    if not wanted:
        raise ValueError('an index needs at least one platform')
    renew = None if push_only is None else [_parse_platform(p) for p in
                                            ([push_only] if isinstance(push_only, str) else push_only)]
    for plat in renew or []:
        if not any(_same_platform(plat, w) for _k, w in wanted):
            raise ValueError('push_only %s is not one of platforms %s' % (_platform_key(plat), list(platforms)))
    current = _current_platform_manifests(name, tag) if renew is not None else []
    native = _native_platform()
    previous = _local_image_id(ref)
    image_id = None
    entries = {}
    for key, plat in wanted:
        if renew is not None and not any(_same_platform(plat, r) for r in renew):
            kept = next((i for p, i in current if _same_platform(p, plat)), None)
            if not kept:
                raise SandboxError('%s serves no %s image to keep (push_only=%s)' % (ref, key, list(push_only)))
            entries[key] = dict(kept, new=False)
            continue
        if _same_platform(plat, native):
            info, image_id = _native_image(name, plat, publish_options)
        else:
            info = _foreign_image(name, plat, family, **publish_options)
        entries[key] = dict(info, new=True)
    descriptors, attestations = [], {}
    for key, plat in wanted:
        info = entries[key]
        descriptors.append({'mediaType': info['media_type'], 'digest': info['digest'], 'size': info['size'],
                            'platform': {k: plat[k] for k in ('architecture', 'os', 'variant') if plat.get(k)}})
    if attestation:
        for key, _plat in wanted:
            desc = _attestation(name, entries[key]['digest'])
            attestations[key] = desc['digest']
            descriptors.append(desc)
    index = {'schemaVersion': 2, 'mediaType': index_type, 'manifests': descriptors}
    raw = _canonical(index)
    digest = _manifest_put(name, tag, raw, index_type)
    if previous is None and image_id is not None:
        _run_docker(['pull', '-q', ref], timeout=300)  # as if pulled: the tag, and the digest a pull records
    for info in entries.values():
        info['platform'] = dict(info.get('platform') or {})
    return {'ref': ref, 'digest': digest, 'media_type': index_type, 'id': image_id, 'manifests': entries,
            'attestations': attestations}
