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
// whatever the policy (RedactSecrets).
func (m SIPMessage) Redact(p TracePolicy) SIPMessage {
	m.Message = RedactSecrets(m.Message)
	if !p.DropBodies && !p.MaskNumbers {
		return m
	}
	head, body, _ := strings.Cut(m.Message, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	for i, line := range lines {
		if !p.MaskNumbers {
			break
		}
		name, _, ok := strings.Cut(line, ":")
		if i == 0 || (ok && partyHeaders[strings.ToLower(strings.TrimSpace(name))]) {
			lines[i] = maskDigits(line)
		}
	}
	if p.DropBodies && body != "" {
		body = "[body removed by the tenant's trace policy: " + strconv.Itoa(len(body)) + " bytes]"
	}
	m.Message = strings.Join(lines, "\r\n") + "\r\n\r\n" + body
	return m
}

// MaskNumber hides all but the last four digits of the phone numbers in s,
// for logs and pages that need to tell calls apart, not to dial them.
func MaskNumber(s string) string { return maskDigits(s) }

// maskDigits replaces all but the last four digits of every run of five
// or more with '*': numbers go, ports and CSeq-sized values stay.
func maskDigits(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); {
		if b[i] < '0' || b[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j-i >= 5 {
			for k := i; k < j-4; k++ {
				b[k] = '*'
			}
		}
		i = j
	}
	return string(b)
}
