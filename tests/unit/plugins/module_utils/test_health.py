"""The health gate's decisions over scripted container states and a scripted clock."""
from ansible_collections.patchops.docker.plugins.module_utils import health

STARTED = '2026-11-28T03:00:00.000000000Z'


def state(running=True, health_status=None, exit_code=0, started=STARTED, restarting=False, oom=False, log=None):
    data = {'Running': running, 'Restarting': restarting, 'ExitCode': exit_code, 'StartedAt': started,
            'OOMKilled': oom}
    if health_status:
        data['Health'] = {'Status': health_status, 'Log': log or []}
    return data


class Script:
    """Returns one scripted inspect per call; time moves one second per sleep."""

    def __init__(self, states, healthcheck=False):
        self.states = list(states)
        self.config = {'Healthcheck': {'Test': ['CMD-SHELL', 'true']}} if healthcheck else {}
        self.now = 100.0

    def inspect_container(self, container_id):
        current = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {'State': current, 'Config': self.config}

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += 1.0


def gate(script, health_timeout=10, stable_seconds=3):
    return health.wait_until_ready(script, 'c', health_timeout, stable_seconds, clock=script.clock, sleep=script.sleep)


def test_without_healthcheck_running_for_stable_seconds_passes():
    result = gate(Script([state()]))
    assert result.ok and result.ready_at == 100.0 and result.healthcheck is False


def test_without_healthcheck_an_exit_fails():
    result = gate(Script([state(), state(running=False, exit_code=3)]))
    assert not result.ok and result.message == 'The new container exited with code 3.'


def test_a_restart_counts_as_a_failure():
    result = gate(Script([state(), state(started='2026-11-28T03:00:02Z')]))
    assert not result.ok
    assert result.message == 'The new container stopped and was started again during its health gate (last exit code 0).'


def test_healthy_passes_at_the_moment_it_is_healthy():
    result = gate(Script([state(health_status='starting'), state(health_status='starting'),
                          state(health_status='healthy')], healthcheck=True))
    assert result.ok and result.ready_at == 102.0 and result.healthcheck is True


def test_unhealthy_fails_with_the_last_probe():
    log = [{'ExitCode': 1, 'Output': 'connection refused\n'}]
    result = gate(Script([state(health_status='unhealthy', log=log)], healthcheck=True))
    assert result.message == 'The new container is unhealthy (last check: exit code 1: connection refused).'


def test_never_healthy_times_out():
    result = gate(Script([state(health_status='starting')], healthcheck=True), health_timeout=4)
    assert not result.ok and result.message == 'The new container was not healthy within 4 s.'


def test_oom_is_named():
    result = gate(Script([state(running=False, oom=True, exit_code=137)]))
    assert result.message == 'The new container was killed for running out of memory.'
