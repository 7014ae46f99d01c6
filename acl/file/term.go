package file

import (
	"fmt"
	"strconv"
	"strings"
)

// term is a parsed Erlang term: an atom, a string, an integer, a tuple or a
// list.
type term struct {
	kind  termKind
	text  string // atom name or string content or integer digits
	items []term // tuple or list elements
	line  int
}

type termKind int

const (
	atomTerm termKind = iota + 1
	stringTerm
	intTerm
	tupleTerm
	listTerm
)

// parser reads the terms of an acl.conf file: each ends with a '.', and
// '%' starts a comment running to the end of the line.
type parser struct {
	src  string
	pos  int
	line int
}

// parseTerms parses every term of src.
func parseTerms(src string) ([]term, error) {
	p := &parser{src: src, line: 1}
	var out []term
	for {
		p.skip()
		if p.pos >= len(p.src) {
			return out, nil
		}
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		p.skip()
		if p.pos >= len(p.src) || p.src[p.pos] != '.' {
			return nil, p.errorf("missing '.' after the rule starting on line %d", t.line)
		}
		p.pos++
		out = append(out, t)
	}
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: %s", p.line, fmt.Sprintf(format, args...))
}

// skip passes blanks and comments.
func (p *parser) skip() {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '%':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

// term parses one term.
func (p *parser) term() (term, error) {
	p.skip()
	if p.pos >= len(p.src) {
		return term{}, p.errorf("unexpected end of file")
	}
	line := p.line
	switch c := p.src[p.pos]; {
	case c == '{' || c == '[':
		closer, kind := byte('}'), tupleTerm
		if c == '[' {
			closer, kind = ']', listTerm
		}
		p.pos++
		t := term{kind: kind, line: line}
		p.skip()
		if p.pos < len(p.src) && p.src[p.pos] == closer {
			p.pos++
			return t, nil
		}
		for {
			item, err := p.term()
			if err != nil {
				return term{}, err
			}
			t.items = append(t.items, item)
			p.skip()
			if p.pos >= len(p.src) {
				return term{}, p.errorf("unexpected end of file, want %q", closer)
			}
			switch p.src[p.pos] {
			case ',':
				p.pos++
			case closer:
				p.pos++
				return t, nil
			default:
				return term{}, p.errorf("unexpected %q, want ',' or %q", p.src[p.pos], closer)
			}
		}
	case c == '"':
		s, err := p.quoted('"')
		return term{kind: stringTerm, text: s, line: line}, err
	case c == '\'':
		s, err := p.quoted('\'')
		return term{kind: atomTerm, text: s, line: line}, err
	case c >= 'a' && c <= 'z':
		start := p.pos
		for p.pos < len(p.src) && isAtomChar(p.src[p.pos]) {
			p.pos++
		}
		return term{kind: atomTerm, text: p.src[start:p.pos], line: line}, nil
	case c >= '0' && c <= '9':
		start := p.pos
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
		}
		return term{kind: intTerm, text: p.src[start:p.pos], line: line}, nil
	default:
		return term{}, p.errorf("unexpected %q", c)
	}
}

func isAtomChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '@'
}

// quoted reads a string or quoted atom with Erlang's common escapes.
func (p *parser) quoted(q byte) (string, error) {
	p.pos++ // opening quote
	var sb strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == q:
			p.pos++
			return sb.String(), nil
		case c == '\\' && p.pos+1 < len(p.src):
			p.pos++
			switch e := p.src[p.pos]; e {
			case 'n':
				sb.WriteByte('\n')
			case 't':
				sb.WriteByte('\t')
			default:
				sb.WriteByte(e)
			}
		case c == '\n':
			p.line++
			sb.WriteByte(c)
		default:
			sb.WriteByte(c)
		}
		p.pos++
	}
	return "", p.errorf("unterminated %s", strconv.QuoteRune(rune(q)))
}
