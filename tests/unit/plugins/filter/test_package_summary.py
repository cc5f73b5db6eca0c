"""package_summary: what each image has pending, security updates first."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.patchops.docker.plugins.filter.package_summary import package_summary

IMAGES = [
    dict(image_id='sha256:a', package_updates=3, security_updates=1, error=None, updates=[
        dict(name='tzdata', installed='2024a', available='2025b', security=False, suite='bookworm-updates', arch='all'),
        dict(name='base-files', installed='12.4', available='12.4+deb12u1', security=False, suite='bookworm'),
        dict(name='libssl3', installed='3.0.11', available='3.0.15', security=True, suite='bookworm-security')]),
    dict(image_id='sha256:b', package_updates=None, security_updates=None, error='No mirror for alpine.', updates=[]),
]


def test_security_updates_come_first_and_top_bounds_the_list():
    summary = package_summary(IMAGES, top=2)
    assert summary['sha256:a'] == dict(package_updates=3, security_updates=1, error=None, top=[
        dict(name='libssl3', installed='3.0.11', available='3.0.15', security=True),
        dict(name='tzdata', installed='2024a', available='2025b', security=False)])
    assert summary['sha256:b'] == dict(package_updates=None, security_updates=None, error='No mirror for alpine.',
                                       top=[])


def test_only_the_images_of_this_host():
    assert list(package_summary(IMAGES, ['sha256:b'])) == ['sha256:b']


def test_anything_but_a_list_is_refused():
    with pytest.raises(AnsibleFilterError):
        package_summary({'images': IMAGES})
