package policy

import (
	"errors"
	"fmt"
	"strings"
)

// maxDepth bounds nesting of parentheses and "not" so a hostile policy file
// cannot make the recursive-descent parser or the evaluator recurse without
// limit.
const maxDepth = 64

// op is what a node of a compiled rule does.
type op uint8

const (
	opTrue    op = iota // "@"
	opFalse             // "!"
	opNot               // not X
	opAnd               // A and B and ...
	opOr                // A or B or ...
	opRule              // rule:<name>
	opRole              // role:<template>, case-insensitive like oslo
	opCred              // <credential field>:<template>
	opLiteral           // <python literal>:<template>
)

// node is one compiled check. Rules are parsed once into trees of nodes and
// evaluated many times, so a node holds everything evaluation needs already
// resolved: the credential field as an enum, the match side split into
// literal text and target keys.
type node struct {
	op    op
	kids  []*node  // opNot (one), opAnd, opOr
	name  string   // opRule: rule name; opLiteral: the literal's string form
	field field    // opCred
	match template // opRole, opCred, opLiteral
	src   string   // the check as written, for String
}

// String renders the tree with explicit parentheses, which is how the tests
// check precedence.
func (n *node) String() string {
	switch n.op {
	case opTrue:
		return "@"
	case opFalse:
		return "!"
	case opNot:
		return "not " + n.kids[0].String()
	case opAnd, opOr:
		sep := " and "
		if n.op == opOr {
			sep = " or "
		}
		parts := make([]string, len(n.kids))
		for i, k := range n.kids {
			parts[i] = k.String()
		}
		return "(" + strings.Join(parts, sep) + ")"
	}
	return n.src
}

// field is a credential attribute the left side of a generic check names.
type field uint8

const (
	fieldUserID field = iota + 1
	fieldUserDomainID
	fieldProjectID
	fieldProjectDomainID
	fieldDomainID
	fieldSystemScope
	fieldRoles
	fieldIsAdmin
	fieldIsAdminProject
)

// lookupField maps the names oslo.context's to_policy_values uses to fields.
// An unknown name is a syntax error rather than a silently false check: a
// typo such as "projectid:%(project_id)s" should fail at load, not deny
// everyone at run time.
func lookupField(name string) (field, bool) {
	switch name {
	case "user_id":
		return fieldUserID, true
	case "user_domain_id":
		return fieldUserDomainID, true
	case "project_id", "tenant_id", "tenant":
		// tenant_id and tenant are the pre-Keystone-v3 spellings that older
		// Neutron and Nova policy files still use.
		return fieldProjectID, true
	case "project_domain_id":
		return fieldProjectDomainID, true
	case "domain_id":
		return fieldDomainID, true
	case "system_scope":
		return fieldSystemScope, true
	case "roles":
		return fieldRoles, true
	case "is_admin":
		return fieldIsAdmin, true
	case "is_admin_project":
		return fieldIsAdminProject, true
	}
	return 0, false
}

// part is a piece of a match template: literal text or a target key.
type part struct {
	text string
	key  bool
}

// template is the right side of a check after Python %-formatting has been
// taken apart: "%(project_id)s" is one key part, "abc" one literal part.
// Matching walks the parts against a value so no string is ever built.
type template []part

// parseTemplate accepts the subset of Python's "%" formatting oslo policies
// use: "%(key)s" and "%%". Anything else would fail inside oslo at run time;
// here it fails at load.
func parseTemplate(s string) (template, error) {
	var t template
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t = append(t, part{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' {
			lit.WriteByte('%')
			i += 2
			continue
		}
		if i+1 >= len(s) || s[i+1] != '(' {
			return nil, fmt.Errorf("bad substitution in %q: want %%(key)s", s)
		}
		end := strings.IndexByte(s[i+2:], ')')
		if end < 0 || i+2+end+1 >= len(s) || s[i+2+end+1] != 's' {
			return nil, fmt.Errorf("bad substitution in %q: want %%(key)s", s)
		}
		flush()
		t = append(t, part{text: s[i+2 : i+2+end], key: true})
		i += 2 + end + 2
	}
	flush()
	return t, nil
}

// matches reports whether the template, expanded with t, equals v. A key
// missing from t makes the match false, as oslo's KeyError does. fold makes
// the comparison case-insensitive, for role checks.
func (m template) matches(t Target, v string, fold bool) bool {
	for _, p := range m {
		s := p.text
		if p.key {
			var ok bool
			if s, ok = t[s]; !ok {
				return false
			}
		}
		if len(v) < len(s) {
			return false
		}
		if fold {
			if !strings.EqualFold(v[:len(s)], s) {
				return false
			}
		} else if v[:len(s)] != s {
			return false
		}
		v = v[len(s):]
	}
	return v == ""
}

// pyLiteral reports whether s is a Python literal as ast.literal_eval would
// read it (for the kinds policies use: strings, booleans, None, integers)
// and returns str() of its value, which is what oslo compares against.
func pyLiteral(s string) (string, bool) {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		inner := s[1 : len(s)-1]
		if strings.IndexByte(inner, s[0]) >= 0 || strings.IndexByte(inner, '\\') >= 0 {
			// Escapes and embedded quotes would need Python's string
			// rules; refuse rather than guess.
			return "", false
		}
		return inner, true
	}
	switch s {
	case "True", "False", "None":
		return s, true
	}
	neg := false
	d := s
	if d != "" && (d[0] == '-' || d[0] == '+') {
		neg = d[0] == '-'
		d = d[1:]
	}
	if d == "" || (len(d) > 1 && d[0] == '0') {
		return "", false // Python 3 rejects leading zeros
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return "", false
		}
	}
	if neg && d != "0" {
		return "-" + d, true
	}
	return d, true
}

// parseCheck compiles one check such as "role:admin" or
// "project_id:%(project_id)s".
func parseCheck(s string) (*node, error) {
	switch s {
	case "@":
		return &node{op: opTrue, src: s}, nil
	case "!":
		return &node{op: opFalse, src: s}, nil
	}
	kind, match, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("check %q: want kind:match, @ or !", s)
	}
	switch kind {
	case "":
		return nil, fmt.Errorf("check %q: empty kind", s)
	case "rule":
		if match == "" {
			return nil, fmt.Errorf("check %q: rule name missing", s)
		}
		return &node{op: opRule, name: match, src: s}, nil
	case "http", "https":
		// oslo's remote HTTP checks would let a policy file make the API
		// call out on every request; Nimbus does not support them.
		return nil, fmt.Errorf("check %q: %s checks are not supported", s, kind)
	}
	m, err := parseTemplate(match)
	if err != nil {
		return nil, fmt.Errorf("check %q: %w", s, err)
	}
	if kind == "role" {
		if match == "" {
			return nil, fmt.Errorf("check %q: role name missing", s)
		}
		return &node{op: opRole, match: m, src: s}, nil
	}
	if lit, ok := pyLiteral(kind); ok {
		return &node{op: opLiteral, name: lit, match: m, src: s}, nil
	}
	f, ok := lookupField(kind)
	if !ok {
		return nil, fmt.Errorf("check %q: unknown credential field %q", s, kind)
	}
	return &node{op: opCred, field: f, match: m, src: s}, nil
}

// tokKind classifies a token of a rule expression.
type tokKind uint8

const (
	tokLParen tokKind = iota
	tokRParen
	tokAnd
	tokOr
	tokNot
	tokCheck
)

type token struct {
	kind tokKind
	text string
}

// tokenize splits an expression the way oslo's _parse_tokenize does: on
// whitespace, with leading "(" and trailing ")" peeled off each word. Inner
// parentheses stay put because "%(project_id)s" contains them.
func tokenize(s string) ([]token, error) {
	var toks []token
	for _, w := range strings.Fields(s) {
		clean := strings.TrimLeft(w, "(")
		for range len(w) - len(clean) {
			toks = append(toks, token{kind: tokLParen, text: "("})
		}
		core := strings.TrimRight(clean, ")")
		switch strings.ToLower(core) {
		case "":
		case "and":
			toks = append(toks, token{kind: tokAnd, text: core})
		case "or":
			toks = append(toks, token{kind: tokOr, text: core})
		case "not":
			toks = append(toks, token{kind: tokNot, text: core})
		default:
			if len(core) >= 2 && (core[0] == '\'' || core[0] == '"') && core[len(core)-1] == core[0] {
				return nil, fmt.Errorf("unexpected bare string %s", core)
			}
			toks = append(toks, token{kind: tokCheck, text: core})
		}
		for range len(clean) - len(core) {
			toks = append(toks, token{kind: tokRParen, text: ")"})
		}
	}
	return toks, nil
}

// parser is a recursive-descent parser over tokens with the usual
// precedence, which is oslo's: not binds tighter than and, and than or.
//
//	expr    = andExpr { "or" andExpr }
//	andExpr = unary { "and" unary }
//	unary   = "not" unary | "(" expr ")" | check
type parser struct {
	toks  []token
	pos   int
	depth int
}

// parse compiles a rule expression. The empty string always allows, as in
// oslo; anything else that does not parse is an error, never a panic.
func parse(s string) (*node, error) {
	if s == "" {
		return &node{op: opTrue, src: "@"}, nil
	}
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, errors.New("empty expression")
	}
	p := &parser{toks: toks}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	return n, nil
}

func (p *parser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

func (p *parser) expr() (*node, error) {
	return p.binary(tokOr, opOr, p.andExpr)
}

func (p *parser) andExpr() (*node, error) {
	return p.binary(tokAnd, opAnd, p.unary)
}

// binary parses operand { sep operand } into one n-ary node, so
// "a or b or c" is a single or with three children.
func (p *parser) binary(sep tokKind, o op, operand func() (*node, error)) (*node, error) {
	first, err := operand()
	if err != nil {
		return nil, err
	}
	kids := []*node{first}
	for {
		t, ok := p.peek()
		if !ok || t.kind != sep {
			break
		}
		p.pos++
		n, err := operand()
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return &node{op: o, kids: kids}, nil
}

func (p *parser) unary() (*node, error) {
	t, ok := p.peek()
	if !ok {
		return nil, errors.New("unexpected end of expression")
	}
	switch t.kind {
	case tokNot, tokLParen:
		p.depth++
		if p.depth > maxDepth {
			return nil, fmt.Errorf("nested deeper than %d", maxDepth)
		}
		defer func() { p.depth-- }()
	}
	p.pos++
	switch t.kind {
	case tokNot:
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &node{op: opNot, kids: []*node{n}}, nil
	case tokLParen:
		n, err := p.expr()
		if err != nil {
			return nil, err
		}
		if c, ok := p.peek(); !ok || c.kind != tokRParen {
			return nil, errors.New(`missing ")"`)
		}
		p.pos++
		return n, nil
	case tokCheck:
		return parseCheck(t.text)
	}
	return nil, fmt.Errorf("unexpected %q", t.text)
}

// parseList compiles oslo's deprecated list syntax, still found in old
// policy.json files: an outer list of alternatives, each an inner list of
// checks that must all pass. The empty list always allows.
func parseList(v []any) (*node, error) {
	if len(v) == 0 {
		return &node{op: opTrue, src: "@"}, nil
	}
	var alts []*node
	for _, inner := range v {
		var checks []any
		switch x := inner.(type) {
		case string:
			checks = []any{x}
		case []any:
			checks = x
		default:
			return nil, fmt.Errorf("list rule: unexpected %T", inner)
		}
		if len(checks) == 0 {
			continue
		}
		var all []*node
		for _, c := range checks {
			s, ok := c.(string)
			if !ok {
				return nil, fmt.Errorf("list rule: unexpected %T", c)
			}
			n, err := parseCheck(s)
			if err != nil {
				return nil, err
			}
			all = append(all, n)
		}
		if len(all) == 1 {
			alts = append(alts, all[0])
		} else {
			alts = append(alts, &node{op: opAnd, kids: all})
		}
	}
	switch len(alts) {
	case 0:
		return &node{op: opFalse, src: "!"}, nil
	case 1:
		return alts[0], nil
	}
	return &node{op: opOr, kids: alts}, nil
}

// refs lists the rule names n refers to, each once, in order of appearance.
func refs(n *node, out []string) []string {
	if n.op == opRule {
		for _, r := range out {
			if r == n.name {
				return out
			}
		}
		return append(out, n.name)
	}
	for _, k := range n.kids {
		out = refs(k, out)
	}
	return out
}
