package switchboard

import "strings"

// A SIP message carries two kinds of secret that no trace may keep: the
// credentials of an Authorization or Proxy-Authorization header (a digest
// response with its nonce is enough to guess the password offline) and
// SDES keys (a=crypto ... inline:KEY), which decrypt the call's media.

// authHeaders name the headers whose values are credentials (lower case).
var authHeaders = map[string]bool{"authorization": true, "proxy-authorization": true}

// RedactedValue stands where a secret was.
const RedactedValue = "<redacted>"

// RedactSecrets returns msg without credentials or media keys: an
// Authorization or Proxy-Authorization header keeps its scheme and, for
// Digest, its username; an a=crypto line keeps its suite, each key
// replaced by '*' of the same length so that Content-Length still holds.
func RedactSecrets(msg string) string {
	if lower := strings.ToLower(msg); !strings.Contains(lower, "authorization") && !strings.Contains(lower, "inline:") {
		return msg // nearly every message
	}
	lines := strings.Split(msg, "\n")
	inBody := false
	for i, line := range lines {
		if strings.TrimRight(line, "\r") == "" {
			inBody = true
			continue
		}
		if inBody {
			lines[i] = redactCrypto(line)
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if ok && authHeaders[strings.ToLower(strings.TrimSpace(name))] {
			cr := ""
			if strings.HasSuffix(value, "\r") {
				cr = "\r"
			}
			lines[i] = name + ": " + redactCredentials(strings.TrimSpace(value)) + cr
		}
	}
	return strings.Join(lines, "\n")
}

// redactCredentials keeps a credential's scheme and a digest username.
func redactCredentials(v string) string {
	scheme, params, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "digest") {
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

// redactCrypto masks the keys of an SDP a=crypto line (RFC 4568: one or
// more inline:KEY|lifetime|MKI, separated by ';').
func redactCrypto(line string) string {
	if !strings.HasPrefix(strings.ToLower(line), "a=crypto:") {
		return line
	}
	b := []byte(line)
	for i := 0; ; {
		j := strings.Index(strings.ToLower(string(b[i:])), "inline:")
		if j < 0 {
			return string(b)
		}
		i += j + len("inline:")
		for ; i < len(b) && !strings.ContainsRune("|; \t\r", rune(b[i])); i++ {
			b[i] = '*'
		}
	}
}
