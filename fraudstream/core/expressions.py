"""A small expression language for rules written as data, parsed and evaluated without Python.

Rule authors write conditions such as ``amount > 500 and country not in ["DE", "AT"]``; the
text arrives on a control topic, so it is tokenised and parsed by a recursive-descent parser
of its own into an immutable tree, never handed to ``eval``, ``exec`` or Python's ``ast``.

Grammar, loosest binding first::

    expression  := or
    or          := and ("or" and)*
    and         := not ("and" not)*
    not         := "not" not | comparison
    comparison  := sum [("==" | "!=" | "<" | "<=" | ">" | ">=") sum
                        | "in" list | "not" "in" list]
    sum         := product (("+" | "-") product)*
    product     := unary (("*" | "/") unary)*
    unary       := "-" unary | primary
    primary     := NUMBER | STRING | "true" | "false" | "null" | FIELD
                 | FUNCTION "(" expression ("," expression)* ")" | "(" expression ")"
    list        := "[" [literal ("," literal)*] "]"        (literal: optionally signed)

Numbers are decimal (``12``, ``0.5``, ``1e3``); strings are double-quoted with the escapes
``\\" \\\\ \\/ \\n \\r \\t \\uXXXX``. Fields are the names the caller allows; the functions are
``startswith(text, prefix)`` (card BIN prefixes) and ``abs(number)``. Comparisons do not chain.

Evaluation never raises. Values are numbers, strings, booleans and ``null`` (a missing field
or a field of another type is ``null``). Ill-typed operations have defined results:

* arithmetic, ``-`` and ``abs`` on anything but numbers, and division by zero, give ``null``;
* ``<``, ``<=``, ``>``, ``>=`` compare two numbers or two strings, anything else is false;
* ``==`` is true only for equal values of the same type (``1 == "1"`` is false, ``null ==
  null`` true); ``!=`` is its negation; ``in`` is ``==`` against any list element;
* ``and``, ``or`` and ``not`` treat only ``true`` as true: ``not null`` is true;
* ``startswith`` is false unless both arguments are strings.

A rule fires when its expression evaluates to exactly ``true`` (:meth:`Expression.matches`).

>>> rule = parse('amount >= 100 and startswith(userId, "4111")', {"amount", "userId"})
>>> rule.matches({"amount": 250.0, "userId": "4111222233334444"})
True
>>> rule.matches({"amount": "lots", "userId": "4111222233334444"})
False
>>> parse("amount > 1 and", {"amount"})
Traceback (most recent call last):
...
fraudstream.core.expressions.ExpressionError: expected a value, found the end at position 14
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum

#: Longest expression text accepted, in characters.
MAX_EXPRESSION_LENGTH = 2000
#: Deepest nesting of parentheses, ``not``, unary minus and function arguments.
MAX_DEPTH = 32
#: Most elements in one ``in [...]`` list.
MAX_LIST_ITEMS = 256

#: What an expression computes: a number, a string, a boolean or null.
Value = float | str | bool | None

#: Functions and their number of arguments.
FUNCTIONS = {"startswith": 2, "abs": 1}
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
_SYMBOLS = ("==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "(", ")", "[", "]", ",")
_HINTS = {
    "=": "use == to compare",
    "!": "use not or !=",
    "&": "use and",
    "|": "use or",
    "'": 'strings are in double quotes: "text"',
    ".": "there is no attribute access; numbers need a leading digit",
}
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "r": "\r", "t": "\t"}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class ExpressionError(ValueError):
    """Why an expression text was refused, and where: ``position`` is a 0-based offset.

    >>> error = ExpressionError("unexpected ')'", 7)
    >>> error.position, error.message, str(error)
    (7, "unexpected ')'", "unexpected ')' at position 7")
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.message = message
        self.position = position


class TokenKind(str, Enum):
    """The lexical classes of the language."""

    NUMBER = "number"
    STRING = "string"
    NAME = "name"
    SYMBOL = "symbol"
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its class, its text (a string's decoded value) and where it starts."""

    kind: TokenKind
    text: str
    position: int


# --- the tree -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: number, string, boolean or null."""

    value: Value


@dataclass(frozen=True, slots=True)
class Field:
    """A named input value, looked up when evaluated."""

    name: str


@dataclass(frozen=True, slots=True)
class Not:
    """Boolean negation: true unless the operand is exactly true."""

    operand: Node


@dataclass(frozen=True, slots=True)
class Negate:
    """Arithmetic minus of one number."""

    operand: Node


@dataclass(frozen=True, slots=True)
class BoolOp:
    """``and`` / ``or`` over two or more operands, short-circuited left to right."""

    op: str
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Arithmetic:
    """A left-associative chain such as ``a + b - c`` (flat, so long chains stay shallow)."""

    first: Node
    rest: tuple[tuple[str, Node], ...]


@dataclass(frozen=True, slots=True)
class Compare:
    """One comparison of two values."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Membership:
    """``operand in [...]`` (or ``not in`` when ``negated``) against constant values."""

    operand: Node
    values: tuple[Value, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class Call:
    """A call of one of :data:`FUNCTIONS`."""

    function: str
    args: tuple[Node, ...]


Node = Literal | Field | Not | Negate | BoolOp | Arithmetic | Compare | Membership | Call


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression: its source, its tree and the fields it reads."""

    source: str
    root: Node
    fields: frozenset[str]

    def evaluate(self, values: Mapping[str, object]) -> Value:
        """The expression's value over ``values``; never raises (see the module's semantics)."""
        return evaluate(self.root, values)

    def matches(self, values: Mapping[str, object]) -> bool:
        """True when the expression evaluates to exactly ``true``."""
        return evaluate(self.root, values) is True


# --- tokens -------------------------------------------------------------------------------------


def tokenize(source: str) -> list[Token]:
    """The tokens of ``source``, ending with an END token; raises :class:`ExpressionError`.

    >>> [t.text for t in tokenize('a<=-2 "x\\\\ty"')]
    ['a', '<=', '-', '2', 'x\\ty', '']
    """
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression longer than {MAX_EXPRESSION_LENGTH} characters", MAX_EXPRESSION_LENGTH
        )
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if char in " \t\r\n":
            i += 1
        elif _is_digit(char):
            end = _number_end(source, i)
            tokens.append(Token(TokenKind.NUMBER, source[i:end], i))
            i = end
        elif _is_name_start(char):
            end = i + 1
            while end < n and _is_name_char(source[end]):
                end += 1
            tokens.append(Token(TokenKind.NAME, source[i:end], i))
            i = end
        elif char == '"':
            text, end = _read_string(source, i)
            tokens.append(Token(TokenKind.STRING, text, i))
            i = end
        else:
            symbol = next((s for s in _SYMBOLS if source.startswith(s, i)), None)
            if symbol is None:
                hint = _HINTS.get(char)
                described = f"unexpected character {char!r}"
                raise ExpressionError(f"{described} ({hint})" if hint else described, i)
            tokens.append(Token(TokenKind.SYMBOL, symbol, i))
            i += len(symbol)
    tokens.append(Token(TokenKind.END, "", n))
    return tokens


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _is_name_start(char: str) -> bool:
    return "a" <= char <= "z" or "A" <= char <= "Z" or char == "_"


def _is_name_char(char: str) -> bool:
    return _is_name_start(char) or _is_digit(char)


def _number_end(source: str, start: int) -> int:
    """Where the decimal number starting at ``start`` ends; refuses ``1.``, ``2e`` and ``3x``."""
    n = len(source)
    i = _digits_end(source, start)
    if i < n and source[i] == ".":
        if i + 1 >= n or not _is_digit(source[i + 1]):
            raise ExpressionError("malformed number: digits must follow the point", start)
        i = _digits_end(source, i + 1)
    if i < n and source[i] in "eE":
        j = i + 1
        if j < n and source[j] in "+-":
            j += 1
        if j >= n or not _is_digit(source[j]):
            raise ExpressionError("malformed number: digits must follow the exponent", start)
        i = _digits_end(source, j)
    if i < n and (_is_name_char(source[i]) or source[i] == "."):
        raise ExpressionError("malformed number", start)
    return i


def _digits_end(source: str, start: int) -> int:
    i = start
    while i < len(source) and _is_digit(source[i]):
        i += 1
    return i


def _read_string(source: str, start: int) -> tuple[str, int]:
    """The decoded string whose opening quote is at ``start``, and the index after it."""
    parts: list[str] = []
    i, n = start + 1, len(source)
    while i < n:
        char = source[i]
        if char == '"':
            return "".join(parts), i + 1
        if char != "\\":
            parts.append(char)
            i += 1
            continue
        if i + 1 >= n:
            break
        escape = source[i + 1]
        if escape in _ESCAPES:
            parts.append(_ESCAPES[escape])
            i += 2
        elif escape == "u":
            digits = source[i + 2 : i + 6]
            if len(digits) != 4 or not set(digits) <= _HEX_DIGITS:
                raise ExpressionError("\\u needs four hex digits", i)
            code = int(digits, 16)
            if 0xD800 <= code <= 0xDFFF:
                raise ExpressionError("\\u escape of a lone surrogate", i)
            parts.append(chr(code))
            i += 6
        else:
            raise ExpressionError(f"unknown escape \\{escape}", i)
    raise ExpressionError("unterminated string", start)


# --- parser -------------------------------------------------------------------------------------


def parse(source: str, allowed_fields: Collection[str]) -> Expression:
    """Parse ``source``, allowing only ``allowed_fields`` as names; raises ExpressionError.

    >>> parse("1 + 2 * 3 == 7 or not true", ()).evaluate({})
    True
    >>> parse("amount > limit", {"amount"})
    Traceback (most recent call last):
    ...
    fraudstream.core.expressions.ExpressionError: unknown field 'limit' at position 9
    """
    return _Parser(tokenize(source), source, frozenset(allowed_fields)).parse()


class _Parser:
    """Recursive descent over the token list, one method per grammar rule."""

    def __init__(self, tokens: list[Token], source: str, allowed: frozenset[str]) -> None:
        self.tokens = tokens
        self.source = source
        self.allowed = allowed
        self.index = 0
        self.depth = 0
        self.fields: set[str] = set()

    def parse(self) -> Expression:
        if self.peek().kind is TokenKind.END:
            raise ExpressionError("empty expression", 0)
        root = self.parse_or()
        token = self.peek()
        if token.kind is not TokenKind.END:
            raise ExpressionError(
                f"expected an operator or the end, found {_show(token)}", token.position
            )
        return Expression(self.source, root, frozenset(self.fields))

    # helpers

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.peek()
        self.index += 1
        return token

    def at(self, kind: TokenKind, *texts: str) -> bool:
        token = self.peek()
        return token.kind is kind and (not texts or token.text in texts)

    def at_keyword(self, word: str) -> bool:
        return self.at(TokenKind.NAME, word)

    def expect_symbol(self, symbol: str, what: str) -> Token:
        token = self.peek()
        if not self.at(TokenKind.SYMBOL, symbol):
            raise ExpressionError(f"expected {what}, found {_show(token)}", token.position)
        return self.advance()

    def nested(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"nested more than {MAX_DEPTH} levels deep", token.position)

    # grammar

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while self.at_keyword("or"):
            self.advance()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def parse_and(self) -> Node:
        operands = [self.parse_not()]
        while self.at_keyword("and"):
            self.advance()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def parse_not(self) -> Node:
        if self.at_keyword("not"):
            token = self.advance()
            self.nested(token)
            operand = self.parse_not()
            self.depth -= 1
            return Not(operand)
        return self.parse_comparison()

    def parse_comparison(self) -> Node:
        left = self.parse_sum()
        node: Node
        if self.at(TokenKind.SYMBOL, *COMPARISONS):
            op = self.advance().text
            node = Compare(op, left, self.parse_sum())
        elif self.at_keyword("in"):
            self.advance()
            node = Membership(left, self.parse_list(), negated=False)
        elif (
            self.at_keyword("not")
            and self.peek(1).kind is TokenKind.NAME
            and (self.peek(1).text == "in")
        ):
            self.index += 2
            node = Membership(left, self.parse_list(), negated=True)
        else:
            return left
        if self.at(TokenKind.SYMBOL, *COMPARISONS) or self.at_keyword("in"):
            token = self.peek()
            raise ExpressionError("comparisons do not chain; join them with and", token.position)
        return node

    def parse_sum(self) -> Node:
        first = self.parse_product()
        rest: list[tuple[str, Node]] = []
        while self.at(TokenKind.SYMBOL, "+", "-"):
            op = self.advance().text
            rest.append((op, self.parse_product()))
        return Arithmetic(first, tuple(rest)) if rest else first

    def parse_product(self) -> Node:
        first = self.parse_unary()
        rest: list[tuple[str, Node]] = []
        while self.at(TokenKind.SYMBOL, "*", "/"):
            op = self.advance().text
            rest.append((op, self.parse_unary()))
        return Arithmetic(first, tuple(rest)) if rest else first

    def parse_unary(self) -> Node:
        if self.at(TokenKind.SYMBOL, "-"):
            token = self.advance()
            self.nested(token)
            operand = self.parse_unary()
            self.depth -= 1
            if isinstance(operand, Literal) and isinstance(operand.value, float):
                return Literal(-operand.value)
            return Negate(operand)
        return self.parse_primary()

    def parse_primary(self) -> Node:
        token = self.peek()
        if token.kind is TokenKind.NUMBER:
            self.advance()
            return Literal(float(token.text))
        if token.kind is TokenKind.STRING:
            self.advance()
            return Literal(token.text)
        if self.at(TokenKind.SYMBOL, "("):
            self.advance()
            self.nested(token)
            inner = self.parse_or()
            self.depth -= 1
            self.expect_symbol(")", "')'")
            return inner
        if token.kind is TokenKind.NAME:
            return self.parse_name(token)
        if token.kind is TokenKind.END:
            raise ExpressionError("expected a value, found the end", token.position)
        if token.text == "[":
            raise ExpressionError("a list may only follow in or not in", token.position)
        raise ExpressionError(f"expected a value, found {_show(token)}", token.position)

    def parse_name(self, token: Token) -> Node:
        word = token.text
        if word in ("true", "false", "null"):
            self.advance()
            return Literal({"true": True, "false": False, "null": None}[word])
        if word in KEYWORDS:
            raise ExpressionError(f"expected a value, found {_show(token)}", token.position)
        self.advance()
        if self.at(TokenKind.SYMBOL, "("):
            return self.parse_call(token)
        if word not in self.allowed:
            raise ExpressionError(
                f"unknown field {word!r}{_suggest(word, self.allowed)}", token.position
            )
        self.fields.add(word)
        return Field(word)

    def parse_call(self, name: Token) -> Node:
        arity = FUNCTIONS.get(name.text)
        if arity is None:
            known = ", ".join(sorted(FUNCTIONS))
            raise ExpressionError(
                f"unknown function {name.text!r} (the functions are {known})", name.position
            )
        opening = self.advance()
        self.nested(opening)
        args = [self.parse_or()]
        while self.at(TokenKind.SYMBOL, ","):
            self.advance()
            args.append(self.parse_or())
        self.depth -= 1
        self.expect_symbol(")", "')' after the arguments")
        if len(args) != arity:
            raise ExpressionError(
                f"{name.text}() takes {arity} argument{'s' if arity > 1 else ''}, got {len(args)}",
                name.position,
            )
        return Call(name.text, tuple(args))

    def parse_list(self) -> tuple[Value, ...]:
        self.expect_symbol("[", "'[' starting a list")
        values: list[Value] = []
        if not self.at(TokenKind.SYMBOL, "]"):
            values.append(self.parse_list_item())
            while self.at(TokenKind.SYMBOL, ","):
                comma = self.advance()
                if len(values) >= MAX_LIST_ITEMS:
                    raise ExpressionError(
                        f"a list holds at most {MAX_LIST_ITEMS} items", comma.position
                    )
                values.append(self.parse_list_item())
        self.expect_symbol("]", "',' or ']' in the list")
        return tuple(values)

    def parse_list_item(self) -> Value:
        sign = 1.0
        if self.at(TokenKind.SYMBOL, "-"):
            self.advance()
            sign = -1.0
            if not self.at(TokenKind.NUMBER):
                raise ExpressionError("list items are constants", self.peek().position)
        item = self.peek()
        if item.kind is TokenKind.NUMBER:
            value: Value = sign * float(item.text)
        elif item.kind is TokenKind.STRING:
            value = item.text
        elif item.kind is TokenKind.NAME and item.text in ("true", "false", "null"):
            value = {"true": True, "false": False, "null": None}[item.text]
        else:
            raise ExpressionError(f"list items are constants, found {_show(item)}", item.position)
        self.advance()
        return value


def _show(token: Token) -> str:
    """How a token is named in an error message."""
    if token.kind is TokenKind.END:
        return "the end"
    if token.kind is TokenKind.STRING:
        return "a string"
    return repr(token.text)


def _suggest(word: str, allowed: frozenset[str]) -> str:
    close = difflib.get_close_matches(word, sorted(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- evaluation ---------------------------------------------------------------------------------


def evaluate(node: Node, values: Mapping[str, object]) -> Value:
    """The value of ``node`` over ``values``; never raises (see the module's semantics).

    >>> evaluate(parse('hour / 0', {"hour"}).root, {"hour": 3})
    >>> evaluate(parse('country != "DE"', {"country"}).root, {})
    True
    """
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Field):
        return _as_value(values.get(node.name))
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(evaluate(operand, values) is True for operand in node.operands)
        return any(evaluate(operand, values) is True for operand in node.operands)
    if isinstance(node, Not):
        return evaluate(node.operand, values) is not True
    if isinstance(node, Compare):
        return _compare(node.op, evaluate(node.left, values), evaluate(node.right, values))
    if isinstance(node, Membership):
        value = evaluate(node.operand, values)
        found = any(_equal(value, item) for item in node.values)
        return found is not node.negated
    if isinstance(node, Arithmetic):
        return _arithmetic(node, values)
    if isinstance(node, Negate):
        value = evaluate(node.operand, values)
        return -value if isinstance(value, float) else None
    return _call(node, values)


def _as_value(raw: object) -> Value:
    """A field's value in the language's types: anything else (or an overflow) is null."""
    if raw is None or isinstance(raw, (bool, str, float)):
        return raw
    if isinstance(raw, int):
        try:
            return float(raw)
        except OverflowError:
            return None
    return None


def _equal(left: Value, right: Value) -> bool:
    """Same type and equal value (so ``true`` never equals ``1``)."""
    return type(left) is type(right) and left == right


def _compare(op: str, left: Value, right: Value) -> bool:
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    if not (
        (isinstance(left, float) and isinstance(right, float))
        or (isinstance(left, str) and isinstance(right, str))
    ):
        return False
    if op == "<":
        return left < right  # type: ignore[operator]
    if op == "<=":
        return left <= right  # type: ignore[operator]
    if op == ">":
        return left > right  # type: ignore[operator]
    return left >= right  # type: ignore[operator]


def _arithmetic(node: Arithmetic, values: Mapping[str, object]) -> Value:
    result = evaluate(node.first, values)
    for op, operand in node.rest:
        right = evaluate(operand, values)
        if not (isinstance(result, float) and isinstance(right, float)):
            return None
        if op == "+":
            result = result + right
        elif op == "-":
            result = result - right
        elif op == "*":
            result = result * right
        elif right == 0.0:
            return None
        else:
            result = result / right
    return result


def _call(node: Call, values: Mapping[str, object]) -> Value:
    args = [evaluate(arg, values) for arg in node.args]
    if node.function == "startswith":
        text, prefix = args
        return isinstance(text, str) and isinstance(prefix, str) and text.startswith(prefix)
    (number,) = args
    return abs(number) if isinstance(number, float) else None
