package sip

import (
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// supported are the SIP extensions (option tags) switchboard implements
// on calls it takes: session timers (RFC 4028, sessiontimer.go) and
// reliable provisional responses (RFC 3262, reliable.go; calls we place
// take them too: prack.go). A request that requires another is refused
// rather than answered as if nothing were required.
var supported = map[string]bool{"timer": true, "100rel": true}

// unsupported lists the option tags req's Require headers name that we do
// not implement (RFC 3261 §8.2.2.3). ACK and CANCEL are never refused for
// them: they follow a request that was taken already.
func unsupported(req *sip.Request) []string {
	if req.IsAck() || req.IsCancel() {
		return nil
	}
	var tags []string
	for _, h := range req.GetHeaders("Require") {
		for _, tag := range strings.Split(h.Value(), ",") {
			if tag = strings.ToLower(strings.TrimSpace(tag)); tag != "" && !supported[tag] {
				tags = append(tags, tag)
			}
		}
	}
	return tags
}

// badExtension is the 420 that names what we do not support.
func badExtension(req *sip.Request, tags []string) *sip.Response {
	res := sip.NewResponseFromRequest(req, sip.StatusBadExtension, phrase(sip.StatusBadExtension), nil)
	res.AppendHeader(sip.NewHeader("Unsupported", strings.Join(tags, ", ")))
	return res
}

// supportedHeader is the Supported header's value: the option tags in
// supported, which an answer names (RFC 3261 §13.3.1.4).
func supportedHeader() string {
	tags := make([]string, 0, len(supported))
	for tag := range supported {
		tags = append(tags, tag)
	}
	slices.Sort(tags)
	return strings.Join(tags, ", ")
}
