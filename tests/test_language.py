import pytest

from builders.filters.language import detect_language, same_language


@pytest.mark.parametrize(
    "text, lang",
    [
        ("保持健康的三个提示。", "zh"),
        ("请解释一下光合作用的过程，并举一个例子。", "zh"),
        ("Give three tips for staying healthy.", "en"),
        ("東京は日本の首都です。", "ja"),
        ("한국어는 한글로 씁니다.", "ko"),
        ("Le chat est sur la table et il dort.", "fr"),
        ("Der Hund ist nicht im Haus.", "de"),
        ("El perro está en la casa con los niños.", "es"),
        ("Привет, как дела?", "ru"),
        ("42 + 7 = 49", "und"),
        ("解释为什么 the sky is blue，天空是蓝色的原因", "zh"),
    ],
)
def test_detects_language(text, lang):
    assert detect_language(text) == lang


def test_same_language_tolerates_undetermined_text():
    assert same_language("保持健康的三个提示。", "多喝水，多运动，早睡早起。")
    assert not same_language("保持健康的三个提示。", "Drink water, exercise and sleep well.")
    assert same_language("保持健康的三个提示。", "42")
