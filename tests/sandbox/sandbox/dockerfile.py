"""The Dockerfile publish() builds: instructions from its options, quoted, and the files it COPYs."""

from __future__ import annotations

import json
import os

from .settings import BASE_IMAGE


def _q(text):
    """A Dockerfile double-quoted word (no variable expansion)."""
    text = str(text)
    if '\n' in text or '\r' in text:
        raise ValueError('a newline cannot go into a Dockerfile instruction: %r' % text)
    return '"%s"' % text.replace('\\', '\\\\').replace('"', '\\"').replace('$', '\\$')


def _single_line(text):
    text = str(text)
    if '\n' in text or '\r' in text:
        raise ValueError('a newline cannot go into a Dockerfile instruction: %r' % text)
    return text


def _exec_or_shell(value):
    if isinstance(value, (list, tuple)):
        return json.dumps([str(v) for v in value])
    return _single_line(value)


def _duration(value):
    if isinstance(value, str):
        return value
    ns = int(round(float(value) * 1e9))
    if ns % 1000000000 == 0:
        return '%ds' % (ns // 1000000000)
    if ns % 1000000 == 0:
        return '%dms' % (ns // 1000000)
    return '%dus' % (ns // 1000)


def _healthcheck_line(hc):
    if hc is None:
        return None
    if isinstance(hc, str):
        if hc.strip().upper() == 'NONE':
            return 'HEALTHCHECK NONE'
        hc = {'test': hc}
    test = hc.get('test')
    if isinstance(test, (list, tuple)):
        test = [str(t) for t in test]
        if not test or test[0] == 'NONE':
            return 'HEALTHCHECK NONE'
        if test[0] == 'CMD-SHELL':
            cmd = 'CMD ' + _single_line(' '.join(test[1:]))
        elif test[0] == 'CMD':
            cmd = 'CMD ' + json.dumps(test[1:])
        else:
            cmd = 'CMD ' + json.dumps(test)
    elif isinstance(test, str):
        shell = test[len('CMD-SHELL '):] if test.startswith('CMD-SHELL ') else test
        cmd = 'CMD ' + _single_line(shell)
    else:
        raise ValueError('healthcheck needs a test: %r' % (hc,))
    opts = []
    for key, flag in (('interval', 'interval'), ('timeout', 'timeout'), ('start_period', 'start-period')):
        if hc.get(key) is not None:
            opts.append('--%s=%s' % (flag, _duration(hc[key])))
    if hc.get('retries') is not None:
        opts.append('--retries=%d' % int(hc['retries']))
    return ' '.join(['HEALTHCHECK'] + opts + [cmd])


def _dockerfile(ctx, base, labels, env, cmd, entrypoint, healthcheck, expose, volumes, user, workdir,
                stopsignal, files):
    """Write Dockerfile (and the files to COPY) into ctx; return labels that need --label."""
    lines = ['FROM ' + (base or BASE_IMAGE)]
    flag_labels = {}
    if env:
        lines.append('ENV ' + ' '.join('%s=%s' % (_q(k), _q(v)) for k, v in env.items()))
    if files:
        by_dir = {}
        for path, content in files.items():
            if not str(path).startswith('/') or str(path).endswith('/'):
                raise ValueError('files keys are absolute file paths in the image: %r' % path)
            by_dir.setdefault(os.path.dirname(path), []).append((os.path.basename(path), content))
        for i, (dest, items) in enumerate(sorted(by_dir.items())):
            srcs = []
            for base_name, content in items:
                mode = 0o644
                if isinstance(content, tuple):
                    content, mode = content
                local = os.path.join(ctx, 'f%d' % i, base_name)
                os.makedirs(os.path.dirname(local), exist_ok=True)
                with open(local, 'wb') as f:
                    f.write(content.encode() if isinstance(content, str) else content)
                os.chmod(local, mode)
                srcs.append('f%d/%s' % (i, base_name))
            lines.append('COPY ' + json.dumps(srcs + [dest.rstrip('/') + '/']))
    if labels:
        inline = {}
        for k, v in labels.items():
            if any(c in str(k) + str(v) for c in '\r\n'):
                flag_labels[str(k)] = str(v)
            else:
                inline[k] = v
        if inline:
            lines.append('LABEL ' + ' '.join('%s=%s' % (_q(k), _q(v)) for k, v in inline.items()))
    if expose:
        lines.append('EXPOSE ' + ' '.join(_single_line(e) for e in expose))
    if volumes:
        lines.append('VOLUME ' + json.dumps([str(v) for v in volumes]))
    if workdir:
        lines.append('WORKDIR ' + _single_line(workdir))
    if user is not None:
        lines.append('USER ' + _single_line(user))
    if stopsignal:
        lines.append('STOPSIGNAL ' + _single_line(stopsignal))
    hc = _healthcheck_line(healthcheck)
    if hc:
        lines.append(hc)
    if entrypoint is not None:
        lines.append('ENTRYPOINT ' + _exec_or_shell(entrypoint))
    if cmd is not None:
        lines.append('CMD ' + _exec_or_shell(cmd))
    with open(os.path.join(ctx, 'Dockerfile'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return flag_labels
