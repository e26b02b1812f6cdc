package switchboard

import (
	"net/netip"
	"strings"
	"unicode"
)

// What a reader who sees callers masked (an operator of a tenant that masks
// numbers) may see of a call's record and timeline, one function per kind
// of value: a number (MaskNumber), a signalling source (MaskSource), an
// external reference (MaskExternalRef), a SIP URI (MaskSIPURI) and a free
// text that may quote any of them (MaskReason). An operator's own network
// address is another person's data than the caller's, hidden by its own
// rule (MaskCandidatePair).

// MaskSIPURI is a SIP URI a call was sent to (a forward's, a transfer's)
// as a reader who sees numbers masked may see it. Its user part names the
// party as a number does: a number (digits, perhaps after a +) is masked as
// MaskNumber masks it; any other user part (a name, a number written with
// separators, parameters, a password) goes whole. The host is one of the
// tenant's dial targets, a PBX or a carrier, and stays; digits elsewhere
// are masked as numbers are.
func MaskSIPURI(uri string) string {
	scheme, rest, ok := strings.Cut(uri, ":")
	if uri == "" {
		return ""
	}
	if !ok || scheme == "" || strings.Trim(strings.ToLower(scheme), "abcdefghijklmnopqrstuvwxyz") != "" {
		return maskUser(uri) // no scheme (sip, sips, tel): not a URI
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return scheme + ":" + maskUser(rest) // a tel: URI is its number
	}
	return scheme + ":" + maskUser(rest[:at]) + "@" + MaskNumber(rest[at+1:])
}

// maskUser is MaskSIPURI's masking of a URI's user part.
func maskUser(user string) string {
	if n := strings.TrimPrefix(user, "+"); n != "" && strings.Trim(n, "0123456789") == "" {
		return MaskNumber(user)
	}
	return "…"
}

// MaskReason is a free-text reason (ours, a far end's reason phrase, an
// error's text) as a reader who sees numbers masked may see it. Such a
// text may quote a number, a SIP URI or an address anywhere and written any
// way ("+49 30 123456", "sip:…@…", "203.0.113.5:5060"), so it is not masked
// digit by digit: it is cut at the word where one of them could begin (five
// digits or more, of any script, with anything but letters between them; an @; an IP
// address), and what follows that word, which could quote more, goes with
// it. What leads stays ("media failed: …", "sip: REFER refused: 404 …"),
// and with it a SIP status that comes first.
func MaskReason(reason string) string {
	cut := numberAt(reason)
	start := 0
	for _, word := range strings.Fields(reason) {
		i := start + strings.Index(reason[start:], word)
		if cut >= 0 && i > cut {
			break
		}
		if strings.Contains(word, "@") || holdsAddress(word) {
			cut = i
			break
		}
		start = i + len(word)
	}
	if cut < 0 {
		return reason
	}
	cut = strings.LastIndexAny(reason[:cut], " \t\r\n") + 1 // the word's start
	return reason[:cut] + "…"
}

// numberAt is where the first run of five digits or more begins in s, or
// -1. Digits are any script's (a full-width ４ too), and a run goes on
// across anything but a letter: a number is written with spaces, dots,
// commas, underscores or brackets between its groups, and no list of
// separators is whole.
func numberAt(s string) int {
	start, digits := -1, 0
	for i, r := range s {
		switch {
		case unicode.IsDigit(r):
			if start < 0 {
				start = i
			}
			if digits++; digits >= 5 {
				return start
			}
		case unicode.IsLetter(r):
			start, digits = -1, 0
		}
	}
	return -1
}

// holdsAddress reports whether word names an IP address, with or without
// a port, after a scheme or a transport ("udp:10.0.0.1"), or as either end
// of a connection ("10.0.0.1:5060->192.0.2.1:5060").
func holdsAddress(word string) bool {
	for _, part := range strings.Split(word, "->") {
		part = strings.Trim(part, `,;()<>"'`)
		for {
			trimmed := strings.TrimRight(part, ".:")
			for _, p := range []string{part, trimmed} {
				if _, err := netip.ParseAddr(p); err == nil {
					return true
				}
				if _, err := netip.ParseAddrPort(p); err == nil {
					return true
				}
			}
			_, after, ok := strings.Cut(part, ":")
			if !ok {
				break
			}
			part = after
		}
	}
	return false
}

// MaskCandidatePair is a WebRTC link's selected candidate pair
// (LinkInfo.Pair: "host udp 192.0.2.1:5000 ↔ srflx udp 203.0.113.9:61000")
// without its addresses, which locate the operator's browser: each
// candidate's type and protocol stay ("host udp … ↔ srflx udp …"), which
// tell a direct path from a relayed one.
func MaskCandidatePair(pair string) string {
	if pair == "" {
		return ""
	}
	sides := strings.Split(pair, " ↔ ")
	for i, side := range sides {
		f := strings.Fields(side)
		if len(f) < 3 {
			sides[i] = "…"
			continue
		}
		sides[i] = f[0] + " " + f[1] + " …"
	}
	return strings.Join(sides, " ↔ ")
}

// MaskCallers masks what the event's detail says of the call's parties as
// a reader who sees callers masked may see it: a browser caller's address
// (source), the SIP URIs the call was sent to (uri, to_uri, transferred_to,
// forwarded_to) and the free-text reasons (reason). The rest of what call
// control writes there names no party: IDs, codes, states, queues' and
// instances' names, counts.
func (e *CallEvent) MaskCallers() {
	for key, v := range e.Detail {
		s, ok := v.(string)
		if !ok {
			continue
		}
		switch key {
		case "source":
			e.Detail[key] = MaskSource(s)
		case "uri", "to_uri", "transferred_to", "forwarded_to":
			e.Detail[key] = MaskSIPURI(s)
		case "reason":
			e.Detail[key] = MaskReason(s)
		case "digit":
			// Keys pressed one event at a time spell out what the
			// caller keyed in: an account number, a callback number.
			e.Detail[key], e.Detail["masked"] = "*", true
		}
	}
}

// MaskOperatorAddress hides the operator's network address from the event:
// the addresses of the candidate pair of their WebRTC link (answered,
// webrtc), as stored (a JSON object) or as call control made it.
func (e *CallEvent) MaskOperatorAddress() {
	switch l := e.Detail["webrtc"].(type) {
	case map[string]any:
		if pair, ok := l["pair"].(string); ok {
			l["pair"] = MaskCandidatePair(pair)
		}
	case LinkInfo:
		l.Pair = MaskCandidatePair(l.Pair)
		e.Detail["webrtc"] = l
	}
}
