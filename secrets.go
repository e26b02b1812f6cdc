package switchboard

import "strings"

// A SIP message carries kinds of secret that no trace may keep: the
// credentials of an Authorization or Proxy-Authorization header (a digest
// response with its nonce is enough to guess the password offline), SDES
// keys (a=crypto ... inline:KEY), which decrypt the call's media, and ICE
// passwords (a=ice-pwd), with which a stranger could answer and make the
// call's connectivity checks while it lasts.

// authHeaders name the headers whose values are credentials (lower case).
var authHeaders = map[string]bool{"authorization": true, "proxy-authorization": true}

// RedactedValue stands where a secret was.
const RedactedValue = "<redacted>"

// RedactSecrets returns msg without credentials or media keys: an
// Authorization or Proxy-Authorization header keeps its scheme and, for
// Digest, its username; an a=crypto line keeps its suite, each key
// replaced by '*' of the same length so that Content-Length still holds,
// and an a=ice-pwd line's password is masked the same way.
func RedactSecrets(msg string) string {
	if !containsFold(msg, "authorization") && !containsFold(msg, "inline:") && !containsFold(msg, "ice-pwd:") {
		return msg // nearly every message: every one is captured, so no copy
	}
	lines := strings.Split(msg, "\n")
	inBody, inAuth := false, false
	for i, line := range lines {
		if strings.TrimRight(line, "\r") == "" {
			inBody = true
			continue
		}
		if inBody {
			lines[i] = redactICEPassword(redactCrypto(line))
			continue
		}
		cr := ""
		if strings.HasSuffix(line, "\r") {
			cr = "\r"
		}
		if line[0] == ' ' || line[0] == '\t' {
			// A folded line continues the header above (RFC 3261 §7.3.1):
			// a credential's further parameters.
			if inAuth {
				lines[i] = "\t" + RedactedValue + cr
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		inAuth = ok && authHeaders[strings.ToLower(strings.TrimSpace(name))]
		if inAuth {
			lines[i] = name + ": " + redactCredentials(strings.TrimSpace(value)) + cr
		}
	}
	return strings.Join(lines, "\n")
}

// redactCredentials keeps a credential's scheme and a digest username.
func redactCredentials(v string) string {
	scheme, params := v, ""
	if i := strings.IndexAny(v, " \t"); i >= 0 {
		scheme, params = v[:i], v[i+1:]
	}
	switch {
	case scheme == "" || strings.IndexFunc(scheme, notLetter) >= 0:
		return RedactedValue // no scheme we can tell from a secret
	case !strings.EqualFold(scheme, "digest"):
		return scheme + " " + RedactedValue
	}
	for _, p := range strings.Split(params, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "username") {
			return scheme + " username=" + strings.TrimSpace(val) + ", " + RedactedValue
		}
	}
	return scheme + " " + RedactedValue
}

// containsFold reports whether s holds sub (lower case, starting with a
// letter) in any case, without the copy strings.ToLower would make.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i]|0x20 == sub[0] && strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func notLetter(r rune) bool { return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') }

// redactCrypto masks the keys of an SDP a=crypto line (RFC 4568: one or
// more inline:KEY|lifetime|MKI, separated by ';').
func redactCrypto(line string) string {
	const attr, param = "a=crypto:", "inline:"
	if len(line) < len(attr) || !strings.EqualFold(line[:len(attr)], attr) {
		return line
	}
	b := []byte(line)
	for i := len(attr); i+len(param) <= len(b); i++ {
		if !strings.EqualFold(string(b[i:i+len(param)]), param) {
			continue
		}
		for i += len(param); i < len(b) && !strings.ContainsRune("|; \t\r", rune(b[i])); i++ {
			b[i] = '*'
		}
	}
	return string(b)
}

// redactICEPassword masks the password of an SDP a=ice-pwd line.
func redactICEPassword(line string) string {
	const attr = "a=ice-pwd:"
	if len(line) < len(attr) || !strings.EqualFold(line[:len(attr)], attr) {
		return line
	}
	b := []byte(line)
	for i := len(attr); i < len(b) && b[i] != '\r'; i++ {
		b[i] = '*'
	}
	return string(b)
}
