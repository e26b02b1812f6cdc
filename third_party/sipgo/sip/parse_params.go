package sip

import (
	"strings"
	"unicode"
)

const (
	paramsStateNone = iota
	paramsStateKey
	paramsStateEqual
	paramsStateValue
	paramsStateQuote
)

func UnmarshalHeaderParams(s string, seperator rune, ending rune, p *HeaderParams) (n int, err error) {
	var start, sep, quote int = 0, 0, -1
	state := paramsStateKey

	// RFC 3261 25.1: SEMI and EQUAL may have whitespace on either side
	// ("; tag = 1"); names and unquoted values are kept without it, and
	// an empty parameter (";;") is no parameter.
	add := func(k, v string) {
		if k = strings.TrimSpace(k); k != "" {
			p.Add(k, v)
		}
	}

	s = strings.TrimLeftFunc(s, unicode.IsSpace) // Remove trailing spaces
	n = len(s)
	for i, c := range s {
		if c == ending {
			n = i
			break
		}

		switch state {
		case paramsStateKey:
			if c == seperator || unicode.IsSpace(c) {
				continue
			}
			sep = 0
			start = i
			state = paramsStateEqual

		case paramsStateEqual:
			if c == seperator {
				// Add support for empty values
				add(s[start:i], "")
				state = paramsStateKey
				continue
			}

			if c != '=' {
				continue
			}

			sep = i
			state = paramsStateValue

		case paramsStateValue:
			switch c {
			case '"':
				state = paramsStateQuote
				quote = i
			case seperator:
				add(s[start:sep], strings.TrimSpace(s[sep+1:i]))
				state = paramsStateKey
			}
		case paramsStateQuote:
			if c != '"' {
				//End quoute
				continue
			}
			add(s[start:sep], s[quote+1:i])
			state = paramsStateKey
		}
	}

	// Do the last one
	switch state {
	case paramsStateValue:
		add(s[start:sep], strings.TrimSpace(s[sep+1:n]))
	case paramsStateEqual:
		// No seperator
		add(s[start:n], "")
	}

	return n, nil
}
