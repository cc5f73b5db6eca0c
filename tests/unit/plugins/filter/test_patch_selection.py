"""Which containers the role patches, and why the others are left alone."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.patchops.docker.plugins.filter.patch_selection import patch_selection


def c(name, update=True, labels=None, reason='registry has a newer image for tag 1'):
    return dict(name=name, update_available=update, labels=labels or {}, reason=reason,
                excluded=(labels or {}).get('patchops.docker.enable') == 'false')


CONTAINERS = [c('web-1'), c('web-canary'), c('db', update=False, reason='running image matches the registry'),
              c('cache', update=None, reason='registry error: 127.0.0.1:5000: connection refused'),
              c('legacy', labels={'patchops.docker.enable': 'false'}),
              c('api', labels={'patchops.docker.enable': 'true'})]


def why(result):
    return dict((e['name'], e['why']) for e in result['excluded'])


def test_defaults_select_everything_with_an_update():
    result = patch_selection(CONTAINERS)
    assert result['selected'] == ['web-1', 'web-canary', 'api']
    assert why(result) == {'legacy': 'labelled patchops.docker.enable=false'}, 'db and cache have nothing to patch'


def test_globs_include_and_exclude_wins():
    result = patch_selection(CONTAINERS, include=['web*', 'api'], exclude=['*canary'])
    assert result['selected'] == ['web-1', 'api']
    assert why(result)['web-canary'] == 'in patch_containers_exclude'
    assert why(result)['db'] == 'not in patch_containers_include'


def test_opt_in_needs_the_label():
    assert patch_selection(CONTAINERS, opt_in=True)['selected'] == ['api']


def test_query_result_of_containers_or_names():
    assert patch_selection(CONTAINERS, query_result=[{'name': 'api'}])['selected'] == ['api']
    assert patch_selection(CONTAINERS, query_result=['web-1'])['selected'] == ['web-1']
    assert why(patch_selection(CONTAINERS, query_result=[]))['api'] == 'not selected by patch_containers_query'


@pytest.mark.parametrize('bad', ['web-1', 3, [3]])
def test_a_query_that_returns_something_else_is_one_clear_error(bad):
    with pytest.raises(AnsibleFilterError) as err:
        patch_selection(CONTAINERS, query_result=bad)
    assert str(err.value).startswith('patch_selection: the query must return')


def test_security_only_selects_only_images_with_security_updates_pending():
    containers = [dict(c('web'), image_id='sha256:web'), dict(c('db'), image_id='sha256:db'),
                  dict(c('cache'), image_id='sha256:cache'), dict(c('misc'), image_id='sha256:gone')]
    pending = {'sha256:web': dict(security_updates=3, package_updates=5, error=None),
               'sha256:db': dict(security_updates=0, package_updates=2, error=None),
               'sha256:cache': dict(security_updates=None, package_updates=None, error='No mirror for alpine.')}
    result = patch_selection(containers, security_only=pending)
    assert result['selected'] == ['web']
    assert why(result) == {
        'db': 'no security updates pending in its image (patch_containers_security_only)',
        'cache': 'security updates of its image unknown: No mirror for alpine.',
        'misc': 'no package information for its image (patch_containers_security_only)'}
    assert patch_selection(containers)['selected'] == ['web', 'db', 'cache', 'misc']
