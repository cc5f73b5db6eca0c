"""image_age_info's own work, in process: ``run()`` without AnsibleModule and without JSON output.

    python module_inprocess.py ARGS.json

ARGS.json is the same ``{"ANSIBLE_MODULE_ARGS": {...}}`` file the module reads
when run as a script; its values are laid over the argument spec's defaults
(which is what AnsibleModule would do for these plain options). PYTHONPATH must
make ``ansible_collections.patchops.docker`` importable.

Prints one JSON object: ``work_seconds`` (client creation + ``run()``, the part
that compares with the floor's ``work_seconds``), ``import_seconds``, the summary,
the per-container update flags, and where the time went: wall time per phase of
``run()`` and, per Docker API method, the number of calls and the time spent in
them (summed over threads, so the registry look-ups can add up to more than
their phase's wall time at concurrency > 1).
"""

import functools
import json
import sys
import threading
import time
from collections import defaultdict

T_START = time.perf_counter()

from ansible_collections.patchops.docker.plugins.modules import image_age_info as mod  # noqa: E402
from ansible_collections.patchops.docker.plugins.module_utils import client as client_utils  # noqa: E402
from ansible_collections.patchops.docker.plugins.module_utils import inventory as inventory_utils  # noqa: E402

T_IMPORTED = time.perf_counter()

from common import module_params, time_calls  # noqa: E402  (after the module's imports were timed)

API_METHODS = ('ping', 'version', 'containers', 'inspect_container', 'images', 'inspect_image',
               'inspect_distribution')


class ModuleFailed(Exception):
    pass


class FakeModule(object):
    """What DockerClient needs of AnsibleModule: params and fail_json."""

    def __init__(self, params):
        self.params = params

    def fail_json(self, msg, **kwargs):
        raise ModuleFailed(msg)


class Meter(object):
    """Wall time per phase and per API method; thread safe for the look-up pool."""

    def __init__(self):
        self.lock = threading.Lock()
        self.phases = defaultdict(float)
        self.calls = defaultdict(lambda: [0, 0.0])

    def wrap_phase(self, owner, attr, label):
        def record(t0):
            with self.lock:
                self.phases[label] += time.perf_counter() - t0
        time_calls(owner, attr, record)

    def wrap_api(self, api):
        for name in API_METHODS:
            time_calls(api, name, functools.partial(self._record_call, name))

    def _record_call(self, name, t0):
        with self.lock:
            entry = self.calls[name]
            entry[0] += 1
            entry[1] += time.perf_counter() - t0


class MeteredClient(client_utils.DockerClient):
    """DockerClient whose API client is metered from its first request on."""

    meter = None

    def _connect(self, params, max_pool_size):
        original = client_utils.docker.APIClient
        meter = self.meter

        class APIClient(original):
            def __init__(self, *args, **kwargs):
                meter.wrap_api(self)  # before __init__, which may ask the version
                super(APIClient, self).__init__(*args, **kwargs)

        client_utils.docker.APIClient = APIClient
        try:
            return super(MeteredClient, self)._connect(params, max_pool_size)
        finally:
            client_utils.docker.APIClient = original


def main(args_file):
    with open(args_file) as f:
        params = module_params(mod, json.load(f)['ANSIBLE_MODULE_ARGS'])
    meter = Meter()
    MeteredClient.meter = meter
    inv = inventory_utils.HostInventory
    meter.wrap_phase(inv, 'containers', 'container list + inspects')
    meter.wrap_phase(inv, 'images', 'image list')
    meter.wrap_phase(inv, 'image', 'image inspects (images not in the list)')
    meter.wrap_phase(inv, 'local_tags', 'local tags')
    meter.wrap_phase(mod, 'lookup_remote_digests', 'registry look-ups')
    meter.wrap_phase(mod, 'assess_container', 'assess containers')
    meter.wrap_phase(mod, 'summarize_images', 'summarize images')
    t0 = time.perf_counter()
    mod.validate(params)
    query = mod.compile_query(FakeModule(params), params['query'])
    client = MeteredClient(FakeModule(params))
    t1 = time.perf_counter()
    result = mod.run(client, params, query)
    t2 = time.perf_counter()
    client.api.close()
    phases = dict(meter.phases)
    phases['connect (client + version + ping)'] = t1 - t0
    # (image() and local_tags() call the cached images() again: microseconds counted twice)
    phases['run() other'] = (t2 - t1) - sum(v for k, v in meter.phases.items())
    return dict(
        work_seconds=t2 - t0,
        import_seconds=T_IMPORTED - T_START,
        phases=phases,
        api_calls=dict((k, dict(count=v[0], seconds=v[1])) for k, v in meter.calls.items()),
        summary=result['summary'],
        containers=[dict(name=c['name'], update_available=c['update_available'], reason=c['reason'])
                    for c in result['containers']],
    )


if __name__ == '__main__':
    json.dump(main(sys.argv[1]), sys.stdout)
