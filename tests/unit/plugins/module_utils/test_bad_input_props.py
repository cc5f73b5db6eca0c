"""Bad input, property-based: whatever a user types, a clear one-sentence refusal or a correct result.

The pure parts of both modules' input handling, at high example counts: the argument
specs (as AnsibleModule applies them) followed by each module's own ``validate``, the
``query`` option, container selection by name, the assessment of containers whatever
their labels and references, and the role's selection filter. The same inputs against
the real engine are in tests/integration/test_bad_input.py.
"""
import re
import traceback
from urllib.parse import urlsplit

import pytest
from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ansible_collections.patchops.docker.plugins.filter.patch_selection import patch_selection
from ansible_collections.patchops.docker.plugins.module_utils import inventory, ordering, query, recreate
from ansible_collections.patchops.docker.plugins.module_utils.errors import ContainerNotFound, PatchopsError
from ansible_collections.patchops.docker.plugins.module_utils.image_age import assess_container, summarize
from ansible_collections.patchops.docker.plugins.module_utils.image_ref import InvalidReference, parse
from ansible_collections.patchops.docker.plugins.modules import container_update, image_age_info
from ansible_collections.patchops.docker.plugins.module_utils import updater

HOST = 'unix:///run/sandbox/docker.sock'
MANY = settings(max_examples=400, deadline=None)


def one_sentence(msg):
    """The shape of every refusal: one line, no traceback, ends like a sentence, not a wall of text."""
    assert isinstance(msg, str) and msg, msg
    assert '\n' not in msg and '\r' not in msg, msg
    assert 'Traceback' not in msg, msg
    assert msg.rstrip().endswith(('.', ')', "'", '"')), msg
    assert not msg.endswith('..'), msg
    assert len(msg) <= 1200, msg


# --- values of every type, for any option ---------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10 ** 20, max_value=10 ** 20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(['', ' ', 'yes', 'no', 'maybe', 'auto', '1.41', '1.2', 'abc', '0', '-1', '99999999999999999999',
                     'always', 'never', 'missing', 'sometimes', 'newest', 'previous', 'ALWAYS']))
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=5), scalars, max_size=3))


def module_args(spec, overrides=None):
    """A dict over the module's options (and an unknown one now and then), each value anything."""
    options = sorted(spec) + ['bogus_option', 'name', 'image']
    return st.dictionaries(st.sampled_from(options), values, max_size=6).map(
        lambda args: dict(args, **(overrides or {})))


def validated(spec, args):
    """What AnsibleModule would make of ``args``: (params, None) or (None, its error message).

    ansible-core 2.21's own int conversion (``check_type_int``, through ``decimal.Decimal``) raises
    OverflowError instead of refusing the value for an infinite float or a string Decimal reads as
    infinite ('inf', 'INFINITY'), and for a three-item list whose first item is beyond a C long (Decimal
    reads it as a sign, digits, exponent tuple); 2.17 refuses them all as not an int.
    AnsibleModule then fails the task with that one line ("Module failed: cannot convert
    Infinity to integer") before any of our code runs: tried with the ansible CLI under both controllers.
    """
    try:
        result = ArgumentSpecValidator(spec).validate(args)
    except OverflowError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        assert frames[-1].name == 'check_type_int' and frames[-1].filename.endswith('module_utils/common/validation.py'), frames
        assert '\n' not in str(exc), exc
        return None, str(exc)
    if result.error_messages:
        return None, result.error_messages[0]
    return result.validated_parameters, None


@MANY
@given(module_args(image_age_info.argument_spec(), dict(docker_host=HOST)))
@example(dict(concurrency=[2 ** 63, None, None], docker_host=HOST))  # found by CI: 2.21 raises OverflowError here
@example(dict(timeout=float('inf'), docker_host=HOST))
@example(dict(timeout='INFINITY', docker_host=HOST))
def test_image_age_info_arguments_are_refused_in_one_sentence_or_accepted(args):
    params, error = validated(image_age_info.argument_spec(), args)
    if error is not None:
        assert 'Traceback' not in error
        return
    try:
        image_age_info.validate(params)
        query.compile_query(None, params['query'])
    except PatchopsError as exc:
        one_sentence(str(exc))
        return
    # accepted: the values a run then relies on
    assert params['max_age_days'] >= 0 and params['max_age_days_exposed'] >= 0
    assert params['concurrency'] >= 1 and params['timeout'] >= 1
    assert (params['api_version'] or 'auto') == 'auto' or re.match(r'^\d+\.\d+$', params['api_version'])


@MANY
@given(module_args(container_update.argument_spec(), dict(docker_host=HOST)))
def test_container_update_arguments_are_refused_in_one_sentence_or_accepted(args):
    params, error = validated(container_update.argument_spec(), args)
    if error is not None:
        assert 'Traceback' not in error
        return
    try:
        updater.validate(params)
    except PatchopsError as exc:
        one_sentence(str(exc))
        return
    assert params['containers'], 'an empty list is refused'
    assert params['pull'] in ('always', 'missing', 'never')
    for option in ('min_image_age_days', 'health_timeout', 'stable_seconds'):
        assert params[option] >= 0
    assert params['timeout'] >= 1 and params['max_parallel'] >= 1


docker_hosts = st.one_of(
    st.sampled_from(['tcp://127.0.0.1:99999', 'tcp://127.0.0.1:-1', 'http://[::1', 'tcp://[::1]:2375', 'tcp://',
                     'unix://', 'ftp://x', 'ssh://root@127.0.0.1', 'tcp://h:2375/path', 'tcp://h:port',
                     'unix:///run/x.sock', 'tcp://127.0.0.1:2376', 'npipe:////./pipe/docker_engine']),
    st.text(max_size=30).map(lambda t: 'tcp://' + t), st.text(max_size=30))


@MANY
@given(docker_hosts, st.integers(-5, 5) | st.integers(), st.sampled_from(['auto', '1.41', 'abc', '1', '1.2.3', '', 'v1.41']))
def test_connection_options_that_cannot_work_are_refused_before_connecting(docker_host, timeout, api_version):
    params, error = validated(image_age_info.argument_spec(),
                              dict(docker_host=docker_host, timeout=timeout, api_version=api_version))
    assert error is None
    try:
        image_age_info.validate(params)
    except PatchopsError as exc:
        one_sentence(str(exc))
        return
    assert params['timeout'] >= 1
    assert (api_version or 'auto') == 'auto' or re.match(r'^\d+\.\d+$', api_version)
    # what the Docker SDK does with the URL must not raise anything but its own errors
    split = urlsplit(docker_host)
    assert split.port is None or 0 <= split.port <= 65535


# --- query ----------------------------------------------------------------------------------------

JMES_PIECES = ['[?', ']', '[', '@', '&', '.', 'name', 'labels', '`1`', "'x'", '"a"', '==', '!=', '<', '>', '||', '&&',
               '!', '(', ')', '{', '}', ':', ',', '|', '*', 'length(', 'sort_by(', 'max_by(', 'min_by(', 'to_number(',
               'abs(', 'join(', 'keys(', 'values(', 'reverse(', 'contains(', 'starts_with(', 'sum(', 'avg(', 'not_null(',
               'image_age_days', 'update_available', 'stale', '`null`', '`true`', '`"s"`', '`[1,"a"]`', ' ', '0', '-1',
               '\\', '\n', '\u00e9', '$']
expressions = st.one_of(st.lists(st.sampled_from(JMES_PIECES), max_size=12).map(''.join), st.text(max_size=30),
                        st.sampled_from(['[?update_available].name', 'max_by(@, &image_age_days)', 'sort_by(@, &labels)',
                                         'sort_by(@, &name)[].name', 'sum([].image_age_days)', 'x' * 5000, '[?a>`1`]',
                                         '[?' + 'x' * 5000, 'length(' + 'y' * 3000 + ')']))
label_values = st.one_of(st.text(max_size=20), st.sampled_from(['true', 'false', 'maybe', '', 'TRUE', 'db,,self']))
containers_data = st.lists(st.fixed_dictionaries({
    'name': st.text(max_size=10),
    'image_age_days': st.one_of(st.none(), st.floats(0, 1000), st.integers(0, 1000)),
    'update_available': st.sampled_from([True, False, None]),
    'stale': st.booleans(),
    'labels': st.dictionaries(st.text(max_size=8), label_values, max_size=3),
}), max_size=5)


@MANY
@given(expressions, containers_data)
def test_a_query_compiles_and_evaluates_or_says_why_not(expression, data):
    try:
        evaluate = query.compile_query(None, expression)
        evaluate(data)
    except PatchopsError as exc:
        one_sentence(str(exc))
        assert len(str(exc)) <= 600, 'a long expression is shortened in the message'


# --- container names ------------------------------------------------------------------------------

SUMMARIES = [{'Id': 'abc123' + '0' * 58, 'Names': ['/web']}, {'Id': 'abd456' + '1' * 58, 'Names': ['/db']},
             {'Id': 'f' * 64, 'Names': ['/x.y_z-1']}]
odd_names = st.one_of(st.text(max_size=60), st.sampled_from(
    ['', '/', '//web', '*', 'web*', '?', '[', 'a\nb', 'web ', ' web', 'ab', 'a', 'abc123', 'f' * 65, 'x' * 5000,
     '\x00', 'caf\u00e9', '../web', 'web\t', 'sha256:' + 'f' * 64, 'nginx:1.25', '127.0.0.1:5115/a:1']))


@MANY
@given(st.lists(odd_names, min_size=1, max_size=4))
def test_selecting_containers_by_odd_names_finds_them_or_names_the_missing_one(names):
    try:
        picked = inventory.select_containers(SUMMARIES, names, HOST)
    except ContainerNotFound as exc:
        one_sentence(str(exc))
        assert HOST in str(exc)
        return
    assert 1 <= len(picked) <= len(names)
    assert len(set(s['Id'] for s in picked)) == len(picked)


# --- what a container carries: labels and references ----------------------------------------------

PATCHOPS_LABELS = ['patchops.docker.enable', 'patchops.docker.depends-on', 'patchops.docker.pre-update',
                   'patchops.docker.post-update', 'patchops.docker.build-context', 'com.docker.compose.project',
                   'com.docker.compose.service']
labels = st.dictionaries(st.one_of(st.sampled_from(PATCHOPS_LABELS), st.text(max_size=30)),
                         st.one_of(label_values, st.text(max_size=300), st.just('a=b\nc=d')), max_size=6)
references = st.one_of(
    st.text(max_size=80), st.none(),
    st.sampled_from(['nginx', 'nginx:1.25', 'NGINX:1', '127.0.0.1:5115/a/b:1', 'localhost:5000/x', '[::1]:5000/x:y',
                     'a@sha256:' + 'a' * 64, 'sha256:' + 'b' * 64, 'b' * 64, 'bbbb', 'x:' + 't' * 200,
                     'r/' + 'p' * 300, 'a:1@sha256:' + 'c' * 64, 'UPPER/case', 'a@sha256:short', 'http://x/y']))
PORT_IPS = ['', '0.0.0.0', '::', '127.0.0.1', '::1', 'garbage']
ports = st.lists(st.fixed_dictionaries({'IP': st.one_of(st.none(), st.sampled_from(PORT_IPS)),
                                        'PublicPort': st.one_of(st.none(), st.integers(0, 70000))}), max_size=3)


@MANY
@given(st.text(max_size=40), references, st.one_of(st.none(), st.sampled_from(['sha256:' + 'b' * 64, 'x', ''])),
       labels, ports, st.sampled_from(['default', 'host', 'none', 'container:abc', '']),
       st.one_of(st.none(), st.fixed_dictionaries({'created': st.one_of(st.integers(-10, 2 ** 33), st.floats(0, 1e10)),
                                                   'repo_digests': st.lists(references.filter(bool), max_size=2),
                                                   'labels': labels})))
def test_assessing_a_container_never_fails_whatever_it_carries(name, reference, image_id, labels, ports, network, image):
    record = dict(id='c' * 64, name=name, state='running', reference=reference, image_id=image_id, labels=labels,
                  ports=ports, port_bindings=None, network_mode=network)
    entry = assess_container(record, image, {}, {}, 1.8e9, 30, 7)
    assert entry['name'] == name and entry['labels'] == labels
    assert entry['update_available'] in (True, False, None)
    assert entry['excluded'] is (str(labels.get('patchops.docker.enable', '')).strip().lower() == 'false')
    one_sentence(entry['reason'] + '.')
    summarize([entry])


@MANY
@given(references.filter(lambda r: isinstance(r, str)))
def test_an_image_reference_parses_or_is_refused_in_one_sentence(reference):
    try:
        ref = parse(reference)
    except InvalidReference as exc:
        one_sentence(str(exc) + '.')
        assert len(str(exc)) < 600
        return
    assert parse(str(ref)) == ref


names_by_id = {'i' * 64: 'web'}


@MANY
@given(st.lists(st.tuples(st.sampled_from(['web', 'db', 'cache', 'worker']), labels), min_size=1, max_size=4,
                unique_by=lambda t: t[0]))
def test_depends_on_labels_naming_unknown_or_self_containers_order_or_name_the_cycle(containers):
    inspects = [{'Name': '/' + name, 'Config': {'Labels': labels}, 'HostConfig': {}} for name, labels in containers]
    try:
        ordered = ordering.dependency_order(inspects, names_by_id)
    except PatchopsError as exc:
        one_sentence(str(exc))
        assert 'depend on each other' in str(exc)
        return
    assert sorted(i['Name'] for i in ordered) == sorted(i['Name'] for i in inspects)
    position = dict((i['Name'].lstrip('/'), n) for n, i in enumerate(ordered))
    for inspect in ordered:
        for dep in ordering.dependencies(inspect, names_by_id):
            if dep in position:
                assert position[dep] < position[inspect['Name'].lstrip('/')]


@MANY
@given(labels, labels)
def test_a_recreate_keeps_every_label_the_container_had_whatever_its_value(own, image_labels):
    container = {'Config': {'Labels': dict(image_labels, **own)}}
    kept = recreate._labels(container, {'Labels': image_labels})[0]['Labels'] or {}
    assert all(kept[key] == value for key, value in own.items() if image_labels.get(key) != value)


# --- the role's selection filter ------------------------------------------------------------------

patterns = st.lists(st.one_of(st.text(max_size=8), st.sampled_from(['*', '[', '[!', '**', '?', '\\', 'web*', '[a-']),
                              st.integers(), st.none()), max_size=3)


@MANY
@given(st.lists(st.fixed_dictionaries({
    'name': st.one_of(st.text(max_size=10), st.none(), st.integers()),
    'update_available': st.sampled_from([True, False, None]),
    'labels': st.one_of(st.none(), labels),
    'excluded': st.booleans()}), max_size=5), patterns, patterns, st.booleans(),
    st.one_of(st.none(), st.lists(st.one_of(st.text(max_size=5), st.fixed_dictionaries({'name': st.text(max_size=5)})))))
def test_the_selection_filter_selects_or_says_why_whatever_the_patterns(containers, include, exclude, opt_in, queried):
    try:
        result = patch_selection(containers, include, exclude, opt_in, queried)
    except AnsibleFilterError as exc:
        one_sentence(str(exc))
        return
    names = [c['name'] for c in containers]
    for name in result['selected']:
        assert name in names
    for item in result['excluded']:
        one_sentence(item['why'] + '.')


@pytest.mark.parametrize('name', ['a\nb', 'x' * 5000, '\x1b[31mred', 'caf\u00e9 au lait'])
def test_an_odd_container_name_is_shown_on_one_short_line(name):
    with pytest.raises(ContainerNotFound) as err:
        inventory.select_containers(SUMMARIES, [name], HOST)
    one_sentence(str(err.value))
    assert len(str(err.value)) < 300
    assert str(err.value).startswith('Container ')


def test_printable_names_keep_their_plain_message():
    with pytest.raises(ContainerNotFound) as err:
        inventory.select_containers(SUMMARIES, ['ghost-1'], HOST)
    assert str(err.value) == "Container 'ghost-1' not found on %s." % HOST


@pytest.mark.parametrize('args, message', [
    (dict(timeout=0), 'timeout must be 1 or more, not 0.'),
    (dict(api_version='abc'), "api_version must be 'auto' or a version such as '1.41', not 'abc'."),
    (dict(docker_host='tcp://127.0.0.1:99999'), "docker_host 'tcp://127.0.0.1:99999' is not a valid URL: "
                                                'Port out of range 0-65535.'),
    (dict(docker_host='http://[::1'), "docker_host 'http://[::1' is not a valid URL: Invalid IPv6 URL."),
])
def test_connection_options_that_cannot_work_have_their_own_sentence(args, message):
    params, error = validated(image_age_info.argument_spec(), dict(dict(docker_host=HOST), **args))
    with pytest.raises(PatchopsError) as err:
        image_age_info.validate(params)
    assert str(err.value) == message
