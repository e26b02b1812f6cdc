package switchboard

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// SIPMessage is one SIP message of a call as it crossed the wire, in
// either direction.
type SIPMessage struct {
	At        time.Time      `json:"at"`
	Inbound   bool           `json:"inbound"`   // received by switchboard
	Transport string         `json:"transport"` // udp, tcp or tls (decrypted)
	Src       netip.AddrPort `json:"src"`
	Dst       netip.AddrPort `json:"dst"`
	Message   string         `json:"message"` // whole, or redacted by the tenant's trace policy
}

// TracePolicy is a tenant's rule for what a call's trace keeps.
type TracePolicy struct {
	// RetentionDays is how long SIP messages and quality samples are kept.
	RetentionDays int `json:"retention_days"`
	// DropBodies replaces message bodies (SDP) with a note of their size.
	DropBodies bool `json:"drop_bodies"`
	// MaskNumbers keeps only the last four digits of the numbers in the
	// headers that name the parties.
	MaskNumbers bool `json:"mask_numbers"`
}

// partyHeaders name the parties of a call; with MaskNumbers their numbers
// are masked (full and compact forms, lower case).
var partyHeaders = map[string]bool{
	"from": true, "f": true, "to": true, "t": true, "contact": true, "m": true,
	"p-asserted-identity": true, "p-preferred-identity": true, "remote-party-id": true,
	"diversion": true, "history-info": true, "referred-by": true, "b": true, "refer-to": true, "r": true,
}

// Redact applies p to the message: its body dropped, the numbers of its
// request line and party headers masked. Credentials and media keys go
// whatever the policy (RedactSecrets). Every message is exported redacted,
// so the copy is made once, in one allocation, and not at all when the
// policy changes nothing.
func (m SIPMessage) Redact(p TracePolicy) SIPMessage {
	m.Message = RedactSecrets(m.Message)
	if !p.DropBodies && !p.MaskNumbers {
		return m
	}
	head, body, whole := strings.Cut(m.Message, "\r\n\r\n")
	dropBody := p.DropBodies && body != ""
	if whole && !dropBody && (!p.MaskNumbers || !masksAny(head)) {
		return m
	}
	var b strings.Builder
	b.Grow(len(head) + len("\r\n\r\n") + max(len(body), len(bodyRemoved)+len(" bytes]")+20))
	for i := 0; ; i++ {
		line, rest, more := strings.Cut(head, "\r\n")
		if p.MaskNumbers && (i == 0 || isPartyHeader(line)) {
			writeMasked(&b, line)
		} else {
			b.WriteString(line)
		}
		if !more {
			break
		}
		b.WriteString("\r\n")
		head = rest
	}
	b.WriteString("\r\n\r\n")
	if dropBody {
		var n [20]byte
		b.WriteString(bodyRemoved)
		b.Write(strconv.AppendInt(n[:0], int64(len(body)), 10))
		b.WriteString(" bytes]")
	} else {
		b.WriteString(body)
	}
	m.Message = b.String()
	return m
}

// bodyRemoved stands, with the body's size, where a dropped body was.
const bodyRemoved = "[body removed by the tenant's trace policy: "

// masksAny reports whether masking numbers changes head: its request
// line or a party header holds a run of five digits or more.
func masksAny(head string) bool {
	for i := 0; ; i++ {
		line, rest, more := strings.Cut(head, "\r\n")
		if (i == 0 || isPartyHeader(line)) && longDigitRun(line) {
			return true
		}
		if !more {
			return false
		}
		head = rest
	}
}

// isPartyHeader reports whether line is a header of partyHeaders, in any
// case, without the copy strings.ToLower would make.
func isPartyHeader(line string) bool {
	name, _, ok := strings.Cut(line, ":")
	if !ok {
		return false
	}
	name = strings.TrimSpace(name)
	var lower [32]byte // longer than any party header's name
	if len(name) > len(lower) {
		return partyHeaders[strings.ToLower(name)]
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	return partyHeaders[string(lower[:len(name)])]
}

// MaskNumber hides all but the last four digits of the phone numbers in s,
// for logs and pages that need to tell calls apart, not to dial them.
func MaskNumber(s string) string { return maskDigits(s) }

// maskDigits replaces all but the last four digits of every run of five
// or more with '*': numbers go, ports and CSeq-sized values stay.
func maskDigits(s string) string {
	if !longDigitRun(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	writeMasked(&b, s)
	return b.String()
}

// writeMasked writes s to b with maskDigits' masking.
func writeMasked(b *strings.Builder, s string) {
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && !isDigit(s[j]) {
			j++
		}
		b.WriteString(s[i:j])
		i = j
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j-i >= 5 {
			for range j - i - 4 {
				b.WriteByte('*')
			}
			i = j - 4
		}
		b.WriteString(s[i:j])
		i = j
	}
}

// longDigitRun reports whether s holds a run of five digits or more.
func longDigitRun(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			run = 0
			continue
		}
		if run++; run >= 5 {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
