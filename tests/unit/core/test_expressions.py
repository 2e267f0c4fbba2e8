"""The rule expression language: what parses, what it evaluates to, and what it refuses."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fraudstream.core.expressions import (
    FUNCTIONS,
    KEYWORDS,
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_LIST_ITEMS,
    BoolOp,
    Compare,
    Expression,
    ExpressionError,
    Field,
    Literal,
    Not,
    parse,
    tokenize,
)

FIELDS = frozenset({"amount", "userId", "merchant", "country", "hour", "velocity", "new_country"})


def value(source: str, **fields: object) -> object:
    return parse(source, FIELDS).evaluate(fields)


def refusal(source: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        parse(source, FIELDS)
    return caught.value


# --- hand-checked evaluations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("10 - 4 - 3", 3.0),
        ("12 / 3 / 2", 2.0),
        ("-2 * -3", 6.0),
        ("- (1 + 1)", -2.0),
        ("abs(-2.5)", 2.5),
        ("1e3 + 0.5", 1000.5),
        ('"a\\"b\\\\c\\u00e9"', 'a"b\\cé'),
        ("true", True),
        ("null", None),
        ("2 >= 2", True),
        ("2 > 2", False),
        ('"abc" < "abd"', True),
        ('1 == "1"', False),
        ('1 != "1"', True),
        ("true == 1", False),
        ("null == null", True),
        ('"DE" in ["AT", "DE"]', True),
        ('"DE" not in ["AT", "DE"]', False),
        ("-1 in [1, -1]", True),
        ("1 in []", False),
        ('startswith("4111222233334444", "4111")', True),
        ('startswith("5500", "4111")', False),
    ],
)
def test_constant_expressions_evaluate_to_their_hand_checked_values(
    source: str, expected: object
) -> None:
    assert value(source) == expected
    assert type(value(source)) is type(expected)


def test_fields_are_read_from_the_values_given_to_evaluate() -> None:
    rule = parse('amount > 100 and country not in ["DE", "AT"]', FIELDS)
    assert rule.fields == {"amount", "country"}
    assert rule.matches({"amount": 150.0, "country": "FR"})
    assert not rule.matches({"amount": 150.0, "country": "DE"})
    assert not rule.matches({"amount": 50, "country": "FR"})  # ints count as numbers


def test_bin_prefix_test_reads_the_start_of_the_user_id() -> None:
    rule = parse('startswith(userId, "411111")', FIELDS)
    assert rule.matches({"userId": "4111111111111111"})
    assert not rule.matches({"userId": "5111111111111111"})


# --- precedence ---------------------------------------------------------------------------------


def test_and_binds_tighter_than_or() -> None:
    assert value("true or true and false") is True
    assert value("(true or true) and false") is False
    assert isinstance(parse("true or true and false", FIELDS).root, BoolOp)


def test_not_binds_tighter_than_and_but_looser_than_comparison() -> None:
    assert value("not false and false") is False
    assert value("not 1 > 2") is True
    assert parse("not amount > 2", FIELDS).root == Not(Compare(">", Field("amount"), Literal(2.0)))


def test_arithmetic_binds_tighter_than_comparison_and_product_tighter_than_sum() -> None:
    assert value("1 + 2 * 3 == 7") is True
    assert value("2 * 3 + 1 > 6 and 8 - 2 / 2 == 7") is True


def test_unary_minus_binds_tighter_than_product() -> None:
    assert value("-2 * 3") == -6.0
    assert value("- abs(-2)") == -2.0


def test_the_tree_is_immutable() -> None:
    rule = parse("amount > 1", FIELDS)
    with pytest.raises(AttributeError):
        rule.root.op = "<"  # type: ignore[misc, union-attr]


# --- semantics of ill-typed operations ----------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        'amount > "100"',
        "amount > null",
        "merchant < 5",
        "true < false",
        "amount >= merchant",
        'startswith(amount, "4")',
        "startswith(merchant, null)",
    ],
)
def test_an_ill_typed_comparison_or_test_is_false(source: str) -> None:
    assert value(source, amount=150.0, merchant="M1") is False


@pytest.mark.parametrize(
    "source", ['amount + "1"', "amount / 0", "-merchant", "abs(merchant)", "amount * null"]
)
def test_ill_typed_arithmetic_and_division_by_zero_give_null(source: str) -> None:
    assert value(source, amount=150.0, merchant="M1") is None


def test_a_missing_field_is_null() -> None:
    assert value("merchant == null") is True
    assert value('merchant != "M1"') is True
    assert value('merchant in ["M1"]') is False
    assert value("amount > 0") is False


def test_boolean_operators_count_only_true_as_true() -> None:
    assert value("not null") is True
    assert value("amount and true", amount=1.0) is False
    assert value("amount or true", amount=1.0) is True
    assert parse("amount", FIELDS).matches({"amount": 1.0}) is False


def test_fields_of_other_types_are_null_and_huge_integers_do_not_overflow() -> None:
    assert value("amount == null", amount=[1, 2]) is True
    assert value("amount == null", amount=10**400) is True
    assert value("amount > 1", amount=10**6) is True


# --- errors and their positions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message", "position"),
    [
        ("", "empty expression", 0),
        ("amount = 1", "unexpected character '='", 7),
        ("amount > 'x'", "double quotes", 9),
        ('country == "DE', "unterminated string", 11),
        ('"\\x"', "unknown escape", 1),
        ('"\\u12"', "four hex digits", 1),
        ('"\\ud800"', "surrogate", 1),
        ("amount > 1.", "digits must follow the point", 9),
        ("amount > 1e+", "digits must follow the exponent", 9),
        ("amount > 12abc", "malformed number", 9),
        ("amont > 1", "unknown field 'amont' (did you mean 'amount'?)", 0),
        ("amount > 1 and", "expected a value, found the end", 14),
        ("amount > 1 hour", "expected an operator or the end, found 'hour'", 11),
        ("(amount > 1", "expected ')'", 11),
        ("amount in country", "expected '[' starting a list", 10),
        ("amount in [1, hour]", "list items are constants", 14),
        ("amount in [1, 2", "expected ',' or ']'", 15),
        ("[1, 2]", "a list may only follow in", 0),
        ("1 < amount < 3", "comparisons do not chain", 11),
        ("max(amount, 1)", "unknown function 'max'", 0),
        ('startswith(userId, "4", "1")', "takes 2 arguments, got 3", 0),
        ("abs()", "expected a value, found ')'", 4),
        ("and", "expected a value, found 'and'", 0),
    ],
)
def test_each_error_names_what_is_wrong_and_where(source: str, message: str, position: int) -> None:
    error = refusal(source)
    assert message in error.message
    assert error.position == position
    assert str(error).endswith(f"at position {position}")


def test_an_expression_longer_than_the_limit_is_refused() -> None:
    longest = "amount > 1" + " " * (MAX_EXPRESSION_LENGTH - len("amount > 1"))
    parse(longest, FIELDS)
    error = refusal(longest + " ")
    assert "longer than" in error.message and error.position == MAX_EXPRESSION_LENGTH


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    parse("(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH, FIELDS)
    error = refusal("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1))
    assert "nested" in error.message and error.position == MAX_DEPTH
    assert "nested" in refusal("not " * (MAX_DEPTH + 1) + "true").message
    assert "nested" in refusal("-" * (MAX_DEPTH + 1) + "1").message


def test_a_list_longer_than_the_limit_is_refused() -> None:
    parse("hour in [" + ", ".join(["1"] * MAX_LIST_ITEMS) + "]", FIELDS)
    error = refusal("hour in [" + ", ".join(["1"] * (MAX_LIST_ITEMS + 1)) + "]")
    assert "at most" in error.message


def test_a_long_flat_chain_stays_shallow_and_evaluates() -> None:
    chain = "+".join(["1"] * 900)
    assert parse(chain, FIELDS).evaluate({}) == 900.0
    ors = " or ".join(["false"] * 200) + " or true"
    assert parse(ors, FIELDS).evaluate({}) is True


# --- outside the grammar ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os')",
        '__import__("os").system("true")',
        "amount.__class__",
        "amount.real > 1",
        "lambda: 1",
        'f"{amount}"',
        "amount[0] > 1",
        "userId[0:4] == 4111",
        "open(1)",
        'eval("1")',
        "exec(amount)",
        "getattr(amount, 1)",
        "amount if true else 1",
        "amount ** 2",
        "amount % 2 == 0",
        "amount // 2",
        "[x for x in country]",
        "{1: 2}",
        "amount; 1",
        "True",
        "None == merchant",
        "amount is null",
        "not_a_field > 1",
        "amount @ 1",
        "`amount`",
        "amount > 1 # comment",
    ],
)
def test_python_constructs_are_not_part_of_the_language(source: str) -> None:
    refusal(source)


def test_keywords_and_function_names_are_not_fields() -> None:
    for word in KEYWORDS - {"true", "false", "null"}:
        with pytest.raises(ExpressionError):
            parse(f"{word} == 1", FIELDS | {word})
    for name in FUNCTIONS:
        assert "unknown field" in refusal(f"{name} == 1").message


# --- property-based ------------------------------------------------------------------------------

_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(),  # nan and infinities too
    st.integers(min_value=-(10**400), max_value=10**400),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=2),
)
_FIELD_VALUES = st.fixed_dictionaries({}, optional={name: _ANY_VALUE for name in FIELDS})
_VOCABULARY = [
    *sorted(FIELDS),
    *sorted(KEYWORDS),
    *sorted(FUNCTIONS),
    "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "(", ")", "[", "]", ",",
    "0", "1", "2.5", "1e308", '"4111"', '""', "'x'", ".", "=", "__import__", "lambda", ":",
]  # fmt: skip


@given(st.text(max_size=200))
def test_parsing_any_text_raises_nothing_but_expression_error(source: str) -> None:
    try:
        parse(source, FIELDS)
    except ExpressionError as error:
        assert 0 <= error.position <= max(len(source), MAX_EXPRESSION_LENGTH)


@given(st.lists(st.sampled_from(_VOCABULARY), max_size=40), _FIELD_VALUES)
def test_random_token_sequences_parse_or_are_refused_and_evaluate_safely(
    words: list[str], values: dict[str, object]
) -> None:
    try:
        expression = parse(" ".join(words), FIELDS)
    except ExpressionError:
        return
    result = expression.evaluate(values)
    assert result is None or isinstance(result, (bool, float, str))


def _expressions() -> st.SearchStrategy[str]:
    """Random sources from the grammar itself, so the evaluator meets every node kind."""
    leaves = st.one_of(
        st.sampled_from(sorted(FIELDS)),
        st.sampled_from(["true", "false", "null", "0", "3", "0.5", "1e308", '"DE"', '"4111"']),
    )

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.sampled_from(["+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">="])
        return st.one_of(
            st.builds(lambda a, op, b: f"({a} {op} {b})", inner, binary, inner),
            st.builds(
                lambda a, op, b: f"({a} {op} {b})", inner, st.sampled_from(["and", "or"]), inner
            ),
            st.builds(lambda a: f"(not {a})", inner),
            st.builds(lambda a: f"(-{a})", inner),
            st.builds(lambda a: f"abs({a})", inner),
            st.builds(lambda a, b: f"startswith({a}, {b})", inner, inner),
            st.builds(lambda a: f'({a} in [1, "DE", null, true])', inner),
            st.builds(lambda a: f"({a} not in [-2.5])", inner),
        )

    return st.recursive(leaves, extend, max_leaves=12)


@given(_expressions(), _FIELD_VALUES)
def test_an_expression_from_the_grammar_parses_and_never_raises_when_evaluated(
    source: str, values: dict[str, object]
) -> None:
    try:
        expression = parse(source, FIELDS)
    except ExpressionError as error:  # only a draw nested beyond the limit may be refused
        assert "nested" in error.message
        assume(False)
    assert isinstance(expression, Expression)
    result = expression.evaluate(values)
    assert result is None or isinstance(result, (bool, float, str))
    assert isinstance(expression.matches(values), bool)


def test_tokens_carry_their_positions() -> None:
    tokens = tokenize('amount >= 10 and "x"')
    assert [(t.text, t.position) for t in tokens] == [
        ("amount", 0),
        (">=", 7),
        ("10", 10),
        ("and", 13),
        ("x", 17),
        ("", 20),
    ]


#: Characters that have no meaning outside a string literal, next to any token.
_FOREIGN = list("%;:{}@#$?&|^~'`\\")


def _outside_strings(source: str) -> list[int]:
    """Insertion points that are not inside a string literal (the draws hold no escapes)."""
    points, quotes = [], 0
    for i in range(len(source) + 1):
        if quotes % 2 == 0:
            points.append(i)
        if i < len(source) and source[i] == '"':
            quotes += 1
    return points


@given(_expressions(), st.sampled_from(_FOREIGN), st.data())
def test_a_foreign_character_anywhere_outside_a_string_is_refused(
    source: str, foreign: str, data: st.DataObject
) -> None:
    at = data.draw(st.sampled_from(_outside_strings(source)))
    with pytest.raises(ExpressionError):
        parse(source[:at] + foreign + source[at:], FIELDS)


_IDENTIFIER = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True).filter(
    lambda name: name not in FIELDS | KEYWORDS | set(FUNCTIONS)
)


@given(_expressions(), _IDENTIFIER, st.sampled_from(["{} > 1", "{}(amount)", "amount == {}"]))
def test_a_name_that_is_no_field_keyword_or_function_is_refused(
    source: str, name: str, template: str
) -> None:
    with pytest.raises(ExpressionError):
        parse(f"{source} and {template.format(name)}", FIELDS)


@given(
    _expressions(),
    st.sampled_from(sorted(FIELDS)),
    st.sampled_from([".real", "[0]", "[0:4]", "()", ".__class__", " if true else 1"]),
)
def test_attribute_access_subscripts_calls_and_conditionals_are_refused(
    source: str, field: str, suffix: str
) -> None:
    with pytest.raises(ExpressionError):
        parse(f"({source}) or {field}{suffix}", FIELDS)
