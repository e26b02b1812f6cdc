package sip

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// encodedBody returns the 415 that refuses req when its body comes in a
// content coding (Content-Encoding, compact form e), which we do not
// decode: read as it stands, a compressed SDP would be refused as
// malformed or, worse, half understood. RFC 3261 §8.2.3: the answer lists
// the codings we take, none but identity. ACK and CANCEL are never
// answered so (§8.2.2.3's reasoning: they follow a request taken already).
func encodedBody(req *sip.Request) *sip.Response {
	if req.IsAck() || req.IsCancel() || len(req.Body()) == 0 {
		return nil
	}
	for _, name := range []string{"Content-Encoding", "e"} {
		for _, h := range req.GetHeaders(name) {
			for _, coding := range strings.Split(h.Value(), ",") {
				if coding = strings.TrimSpace(coding); coding != "" && !strings.EqualFold(coding, "identity") {
					res := sip.NewResponseFromRequest(req, sip.StatusUnsupportedMediaType, phrase(sip.StatusUnsupportedMediaType), nil)
					res.AppendHeader(sip.NewHeader("Accept-Encoding", "identity"))
					res.AppendHeader(reasonHeader(sip.StatusUnsupportedMediaType, "the body's content coding "+coding+" is not taken"))
					return res
				}
			}
		}
	}
	return nil
}
