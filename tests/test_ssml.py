"""InputSsml as the vendor's SSML: each tag's rules, and hostile markup that must cost nothing."""

import pytest
from ivh_mock.spec.ssml import Segment, SsmlChecker, SsmlError

from ivh_mock import spec as spec_module

from .conftest import TEXT_PAYLOAD

CHECKER = SsmlChecker(spec_module.load().ssml_rules)

VALID = [
    "plain text without tags",
    "<speak>你好，我是虚拟主播。</speak>",
    '本行将每月定期上<phoneme alphabet="py" ph="chuan2">传</phoneme>记录至人民银行。',
    '<phoneme alphabet="py" ph="zhong1 guo2">中国</phoneme>很大',
    'Hello, I am the virtual <phoneme alphabet="py" ph="fu4">anchor</phoneme>',
    '你好<break time="100ms"/>世界',
    '你好<break time="9s"/>世界<break time="50ms"/>吗',
    '你好<break time="9000ms"/>世界',
    '你好<break strength="weak"/>世界',
    "<speak><sub alias=\"语音合成\">TTS</sub></speak>",
    '<say-as interpret-as="cardinal">123</say-as>个苹果',
    '<say-as interpret-as="telephone">12345678</say-as>',
    "<word>hello world</word>说",
    "<word>数字人</word>说话",
    "Tom &amp; Jerry &lt;3",
    "<![CDATA[Tom & Jerry]]> say hi",
]


@pytest.mark.parametrize("text", VALID)
def test_valid_ssml_passes(text):
    assert CHECKER.problems(text) == []


INVALID = [
    ("<foo>x</foo>hello", "unsupported tag <foo>"),
    ('<phoneme ph="fu4">福</phoneme>好', "<phoneme> needs attribute 'alphabet'"),
    ('<phoneme alphabet="py">福</phoneme>好', "<phoneme> needs attribute 'ph'"),
    ('<phoneme alphabet="ipa" ph="fu4">福</phoneme>好', "alphabet='ipa' must be one of py"),
    ('<phoneme alphabet="py" ph="fu">福</phoneme>好', "ph='fu' must be pinyin syllables with tone digits 1-5"),
    ('<phoneme alphabet="py" ph="fu6">福</phoneme>好', "must be pinyin syllables"),
    ('<phoneme alphabet="py" ph="fu4 hao3">福</phoneme>好', "2 pinyin syllable(s) for 1 Chinese character(s)"),
    ('<phoneme alphabet="py" ph="fu4"></phoneme>你好', "<phoneme> must contain text"),
    ('<phoneme alphabet="py" ph="fu4">福<break/></phoneme>你好', "<phoneme> may contain only text, found <break>"),
    ('你好<break time="10s"/>世界', "time='10s' must be 1s..9s or 50ms..9000ms"),
    ('你好<break time="0s"/>世界', "time='0s'"),
    ('你好<break time="49ms"/>世界', "time='49ms'"),
    ('你好<break time="9001ms"/>世界', "time='9001ms'"),
    ('你好<break time="1.5s"/>世界', "time='1.5s'"),
    ('你好<break time="100"/>世界', "time='100'"),
    ('你好<break time="9s&#10;"/>世界', "time='9s\\n'"),
    ('你好<break strength="loud"/>世界', "strength='loud' must be one of x-weak, weak, medium, strong, x-strong"),
    ("你好<break>停</break>世界", "<break> must be empty"),
    ('你好<break pause="1s"/>世界', "<break> has unsupported attribute 'pause'"),
    ("<sub>TTS</sub>很好", "<sub> needs attribute 'alias'"),
    ("<say-as>123</say-as>个", "<say-as> needs attribute 'interpret-as'"),
    ('<say-as interpret-as="money">1</say-as>元', "interpret-as='money' must be one of cardinal"),
    ("<word>hello世界</word>说", "<word> must hold one word or phrase, all Chinese or all English"),
    ("<speak>a</speak><speak>b</speak>", "<speak> may only wrap the whole text, once"),
    ("前面<speak>你好</speak>", "<speak> may only wrap the whole text"),
    ("<speak><speak>你好</speak></speak>", "<speak> may only wrap the whole text"),
    ("Tom & Jerry", "is not well-formed SSML"),
    ("a < b and c", "is not well-formed SSML"),
    ("<phoneme alphabet='py' ph='fu4'>福</phonem>", "is not well-formed SSML: mismatched tag"),
    ("hello &nbsp; world", "is not well-formed SSML: undefined entity"),
    ('<ns:tag xmlns:ns="urn:x">x</ns:tag>abc', "unsupported tag"),
    # a W3C SSML document had been told of `<{http://www.w3.org/2001/10/synthesis}speak>` and
    # `'{http://www.w3.org/XML/1998/namespace}lang'`, ElementTree's names, and a declaration at its very start that it
    # was "not at start of entity at character 1"
    ('<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis">你好世界</speak>',
     'uses unsupported tag <speak xmlns="http://www.w3.org/2001/10/synthesis">: the API\'s tags are in no namespace'),
    ('<speak xml:lang="zh-CN">你好世界</speak>', "<speak> has unsupported attribute 'xml:lang' (allowed: none)"),
    ('<speak q:a="1" xmlns:q="urn:q">你好世界</speak>', "unsupported attribute 'a (namespace urn:q)'"),
    ('<?xml version="1.0" encoding="UTF-8"?><speak>你好世界</speak>',
     "starts with an XML declaration (<?xml ...?>), which InputSsml does not take"),
    ("<break/><break/>", "has no text to speak"),
    ("<speak>   </speak>", "has no text to speak"),
    # punctuation, symbols and emoji alone had been accepted and spoken in 1 ms, where spaces were refused
    ("。。。。", "has no text to speak (a letter or a digit)"),
    ("……！？", "has no text to speak"),
    ("😀😀😀😀", "has no text to speak"),
    ("\U0010ffff" * 4, "has no text to speak"),
    ("<break/>$%&amp;", "has no text to speak"),
]


@pytest.mark.parametrize("text, problem", INVALID)
def test_invalid_ssml_names_the_tag_and_rule(text, problem):
    problems = CHECKER.problems(text)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize("hostile", [
    '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><speak>&a;&a;</speak>',
    '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><speak>&e;</speak>',
    '<?xml version="1.0"?><speak>hi</speak>',
])
def test_hostile_xml_is_refused_without_expansion(api, hostile):
    assert CHECKER.problems(hostile)
    answer = api.call("phototovideonotrain", {**TEXT_PAYLOAD, "InputSsml": hostile})
    assert answer.code == 100002
    assert "Payload.InputSsml" in answer.message
    assert "root:" not in answer.message  # no file content ever comes back


def test_an_ssml_error_comes_back_as_a_parameter_error_naming_the_tag(api):
    answer = api.call("phototovideonotrain", {**TEXT_PAYLOAD, "InputSsml": '你好<break time="10s"/>世界'})
    assert answer.code == 100002
    assert answer.message.startswith("Payload.InputSsml <break> attribute time='10s'")


def test_segments_give_the_spoken_text_and_pauses():
    segments = CHECKER.segments('<speak>你好<break time="300ms"/><sub alias="语音合成">TTS</sub>，'
                                '<phoneme alphabet="py" ph="chuan2">传</phoneme>。</speak>')
    assert segments == [Segment(text="你好"), Segment(pause={"time": "300ms"}), Segment(text="语音合成"),
                        Segment(text="，"), Segment(text="传"), Segment(text="。")]


def test_segments_of_malformed_markup_raise():
    with pytest.raises(SsmlError):
        CHECKER.segments("<speak>unclosed")
