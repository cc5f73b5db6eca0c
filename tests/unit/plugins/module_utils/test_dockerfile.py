"""Reading the base images of a Dockerfile the way Docker's builder reads them, without Docker."""
import pytest

from ansible_collections.patchops.docker.plugins.module_utils.dockerfile import DockerfileError, base_images, read_stages

REG = '127.0.0.1:5115'


def bases(text, build_args=None, target=None):
    return base_images(read_stages(text, build_args, target))


def test_a_plain_from_is_fully_qualified():
    assert bases('FROM busybox\nRUN true\n') == ['docker.io/library/busybox:latest']
    assert bases('FROM %s/shop/base:1.2\n' % REG) == ['%s/shop/base:1.2' % REG]


def test_lowercase_instructions_and_as_are_accepted():
    stages = read_stages('from alpine:3 as Build\nfrom build\n')
    assert stages[0]['name'] == 'build'
    assert stages[1]['stage'] == 0 and stages[1]['image'] is None


def test_multi_stage_from_an_earlier_stage_is_no_image():
    text = '''FROM golang:1.22 AS builder
RUN go build
FROM builder AS tested
RUN go test
FROM alpine:3.19
COPY --from=builder /app /app
'''
    stages = read_stages(text)
    assert [s['name'] for s in stages] == ['builder', 'tested', None]
    assert stages[1]['stage'] == 0
    assert base_images(stages) == ['docker.io/library/golang:1.22', 'docker.io/library/alpine:3.19']


def test_a_stage_name_only_counts_once_it_is_defined():
    # 'builder' is not a stage yet on the first line: it is an image then
    assert bases('FROM builder\nFROM alpine AS builder\n') == ['docker.io/library/builder:latest',
                                                               'docker.io/library/alpine:latest']


def test_scratch_is_no_image():
    assert bases('FROM scratch\nCOPY app /\n') == []
    assert bases('FROM SCRATCH\n') == []


def test_meta_args_with_defaults_and_build_args():
    text = '''ARG REGISTRY=%s
ARG BASE=shop/base
ARG TAG=1
FROM ${REGISTRY}/${BASE}:$TAG
''' % REG
    assert bases(text) == ['%s/shop/base:1' % REG]
    assert bases(text, {'TAG': '2'}) == ['%s/shop/base:2' % REG]


def test_a_meta_arg_default_may_use_an_earlier_one():
    text = 'ARG VERSION=3.19\nARG IMAGE=alpine:${VERSION}\nFROM $IMAGE\n'
    assert bases(text) == ['docker.io/library/alpine:3.19']
    assert bases(text, {'VERSION': '3.20'}) == ['docker.io/library/alpine:3.20']
    assert bases(text, {'IMAGE': 'debian:12'}) == ['docker.io/library/debian:12']


def test_several_args_on_one_line_and_quotes():
    assert bases('ARG A="alpine" B=\'3.19\'\nFROM ${A}:${B}\n') == ['docker.io/library/alpine:3.19']


def test_substitution_modifiers():
    text = 'ARG TAG\nARG EMPTY=\nFROM alpine:${TAG:-3.18}${EMPTY:+x}\n'
    assert bases(text) == ['docker.io/library/alpine:3.18']
    assert bases(text, {'TAG': '3.20'}) == ['docker.io/library/alpine:3.20']
    # without the colon, an empty value counts as set
    assert bases('ARG TAG=\nFROM alpine${TAG-:3.17}\n') == ['docker.io/library/alpine:latest']
    assert bases('ARG T=1\nFROM alpine:${T:+3.16}\n') == ['docker.io/library/alpine:3.16']


def test_a_required_arg_that_is_missing_says_so():
    # FROM's words are split on blanks before substitution, as Docker does: no blank in the message
    with pytest.raises(DockerfileError, match=r'line 2: BASE is not set: give-BASE'):
        read_stages('ARG BASE\nFROM ${BASE:?give-BASE}\n')
    assert bases('ARG BASE=alpine\nFROM ${BASE:?give-BASE}\n') == ['docker.io/library/alpine:latest']


def test_args_after_the_first_from_are_not_seen_by_from():
    text = 'FROM alpine AS one\nARG TAG=3.19\nFROM busybox:${TAG:-1.36}\n'
    assert bases(text) == ['docker.io/library/alpine:latest', 'docker.io/library/busybox:1.36']


def test_build_args_that_are_not_declared_do_not_apply():
    assert bases('FROM alpine:${TAG:-3}\n', {'TAG': '9'}) == ['docker.io/library/alpine:3']


def test_platform_flag():
    stages = read_stages('ARG P=linux/arm64\nFROM --platform=$P alpine:3 AS a\nFROM --platform=linux/amd64 busybox\n')
    assert [s['platform'] for s in stages] == ['linux/arm64', 'linux/amd64']
    assert base_images(stages) == ['docker.io/library/alpine:3', 'docker.io/library/busybox:latest']


def test_continuations_comments_and_blank_lines():
    text = '''# a comment
  # an indented comment

FROM \\
  # a comment inside the instruction
  alpine:3.19 \\
  AS base
RUN apk add \\

    curl
FROM base
'''
    stages = read_stages(text)
    assert stages[0]['name'] == 'base' and stages[0]['image'] == 'docker.io/library/alpine:3.19'
    assert stages[1]['stage'] == 0


def test_the_escape_directive_changes_the_continuation_character():
    text = '# escape=`\nFROM mcr.example.com/windows/servercore:ltsc2022 `\n  AS base\nRUN dir c:\\\n'
    stages = read_stages(text)
    assert stages[0]['name'] == 'base'
    assert stages[0]['image'] == 'mcr.example.com/windows/servercore:ltsc2022'


def test_directives_only_count_at_the_top():
    # after a comment, '# escape=`' is a comment: \ still continues lines
    text = '# hello\n# escape=`\nFROM alpine \\\n  AS a\n'
    assert read_stages(text)[0]['name'] == 'a'
    assert bases('# syntax=docker/dockerfile:1\n# check=skip=all\nFROM alpine\n') == ['docker.io/library/alpine:latest']


def test_a_directive_set_twice_is_refused():
    with pytest.raises(DockerfileError, match='set twice'):
        read_stages('# escape=`\n# escape=\\\nFROM alpine\n')


def test_copy_from_an_image_is_an_input_but_not_from_a_stage_or_index():
    text = '''FROM alpine AS build
FROM busybox
COPY --from=build /a /a
COPY --from=0 /b /b
COPY --chown=1:1 --from=%s/tools/jq:1.7 /jq /usr/bin/jq
COPY --from=$X /c /c
''' % REG
    assert bases(text) == ['docker.io/library/alpine:latest', 'docker.io/library/busybox:latest',
                           '%s/tools/jq:1.7' % REG]


def test_a_digest_pinned_base_keeps_its_digest():
    digest = 'sha256:' + 'a' * 64
    assert bases('FROM alpine@%s\n' % digest) == ['docker.io/library/alpine@%s' % digest]


def test_target_drops_the_later_stages():
    text = 'FROM golang AS build\nFROM alpine AS runtime\nFROM debian AS debug\n'
    assert bases(text, target='runtime') == ['docker.io/library/golang:latest', 'docker.io/library/alpine:latest']
    assert bases(text, target='RUNTIME') == ['docker.io/library/golang:latest', 'docker.io/library/alpine:latest']


@pytest.mark.parametrize('text, build_args, target, words', [
    ('', None, None, 'has no FROM instruction'),
    ('# only a comment\n', None, None, 'has no FROM instruction'),
    ('RUN true\nFROM alpine\n', None, None, 'line 1: RUN comes before the first FROM'),
    ('FROM\n', None, None, 'line 1: FROM needs one image'),
    ('FROM a b\n', None, None, 'line 1: FROM needs one image'),
    ('FROM alpine AS 1x\n', None, None, 'no valid stage name'),
    ('FROM --pull alpine\n', None, None, 'only the flag --platform'),
    ('ARG BASE\nFROM $BASE\n', None, None, 'line 2: FROM \\$BASE names no image'),
    ('FROM Alpine:3\n', None, None, 'line 1: Alpine:3 is no valid image reference'),
    ('ARG T=x y\nFROM alpine:${T}\n', {'T': 'bad tag!'}, None, 'alpine:bad tag! \\(from alpine:\\$\\{T\\}\\) is no valid'),
    ('FROM alpine:${T\n', None, None, 'missing }'),
    ('FROM alpine:${T/x}\n', None, None, 'unsupported modifier'),
    ('FROM "alpine\n', None, None, 'unmatched double quote'),
    ('FROM alpine AS a\n', None, 'b', 'has no stage named b'),
])
def test_bad_dockerfiles_say_why_in_one_sentence(text, build_args, target, words):
    with pytest.raises(DockerfileError, match=words) as caught:
        read_stages(text, build_args, target, where='ctx/Dockerfile')
    message = str(caught.value)
    assert message.startswith('ctx/Dockerfile') and message.endswith('.')
    assert '\n' not in message


def test_crlf_line_endings():
    assert bases('ARG T=1\r\nFROM alpine:$T \\\r\n  AS a\r\n') == ['docker.io/library/alpine:1']
