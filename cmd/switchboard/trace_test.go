package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

type traceBody struct {
	SIP    []sb.SIPMessage `json:"sip"`
	Events []sb.CallEvent  `json:"events"`
}

// firstLine is a message's request or status line.
func firstLine(m sb.SIPMessage) string {
	line, _, _ := strings.Cut(m.Message, "\r\n")
	return line
}

// A call's SIP messages, both ways, as they crossed the wire, are kept
// with it and read back in order; the record says how long the caller
// waited; its quality samples are there; operators do not read traces.
func TestCallTrace(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			m := mustStartService(t, nil)
			f := mustProvision(t, m, "Acme", "2000", 1)
			op := mustOperator(t, m, f.Operators[0])
			phone := mustPhone(t, siptest.Options{Transport: transport})
			call, in := answeredCall(t, m, phone, op, "+15550001111", "2000")
			sendPattern(t, 25, func(p []byte) error { return call.SendRTP(p, false) })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := call.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			rec := waitCallEnded(t, m, f.APIKey, in.CallID)
			if rec.Q850Cause != 16 || rec.FailureStage != "" || rec.TimeToAnswerMS <= 0 || rec.PostDialDelayMS <= 0 || rec.PostDialDelayMS > rec.TimeToAnswerMS {
				t.Errorf("record: cause %d, failure %q, post-dial %d ms, answer %d ms", rec.Q850Cause, rec.FailureStage, rec.PostDialDelayMS, rec.TimeToAnswerMS)
			}

			var tr traceBody
			if code := apiGet(t, m, f.APIKey, "/v1/calls/"+in.CallID.String()+"/trace", &tr); code != http.StatusOK {
				t.Fatalf("GET trace: %d", code)
			}
			want := []struct {
				inbound bool
				prefix  string
			}{{true, "INVITE "}, {false, "SIP/2.0 100"}, {false, "SIP/2.0 180"}, {false, "SIP/2.0 200"}, {true, "ACK "}, {true, "BYE "}, {false, "SIP/2.0 200"}}
			i := 0
			var last time.Time
			for _, msg := range tr.SIP {
				if msg.Transport != transport || !msg.Src.IsValid() || !msg.Dst.IsValid() || msg.At.Before(last) {
					t.Errorf("message %q: transport %s, %s → %s at %v", firstLine(msg), msg.Transport, msg.Src, msg.Dst, msg.At)
				}
				last = msg.At
				if i < len(want) && msg.Inbound == want[i].inbound && strings.HasPrefix(firstLine(msg), want[i].prefix) {
					if msg.Inbound && msg.Dst.String() != m.SIPAddr() || !msg.Inbound && msg.Src.String() != m.SIPAddr() {
						t.Errorf("%q: %s → %s, but the service is %s", firstLine(msg), msg.Src, msg.Dst, m.SIPAddr())
					}
					i++
				}
			}
			if i != len(want) {
				var lines []string
				for _, msg := range tr.SIP {
					lines = append(lines, firstLine(msg))
				}
				t.Errorf("trace %q lacks %q (inbound %t) in order", lines, want[i].prefix, want[i].inbound)
			}
			if len(tr.Events) == 0 || tr.Events[0].Type != sb.EventReceived {
				t.Errorf("trace events %v", tr.Events)
			}
			// The answer notes the operator's WebRTC transport.
			for _, e := range tr.Events {
				if e.Type != sb.EventAnswered {
					continue
				}
				link, _ := e.Detail["webrtc"].(map[string]any)
				if link["ice"] != "connected" || link["dtls"] != "connected" || !strings.Contains(fmt.Sprint(link["pair"]), "host udp 127.0.0.1:") {
					t.Errorf("answered with WebRTC link %v", e.Detail["webrtc"])
				}
			}

			var q struct {
				FromCaller sb.MediaStats      `json:"from_caller"`
				Samples    []sb.QualitySample `json:"samples"`
			}
			if code := apiGet(t, m, f.APIKey, "/v1/calls/"+in.CallID.String()+"/quality", &q); code != http.StatusOK {
				t.Fatalf("GET quality: %d", code)
			}
			legs := map[string]uint64{}
			for _, s := range q.Samples {
				legs[s.Leg+"/"+s.Source] = max(legs[s.Leg+"/"+s.Source], s.Packets)
			}
			if q.FromCaller.Packets < 20 || legs["trunk/switchboard"] != q.FromCaller.Packets {
				t.Errorf("quality: from caller %d packets, samples %v", q.FromCaller.Packets, legs)
			}

			// The signalling as a pcap file, and the call's MOS.
			res, err := http.Get(m.HTTPURL() + "/v1/calls/" + in.CallID.String() + "/pcap?x=1")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("a pcap without credentials: %d", res.StatusCode)
			}
			req, _ := http.NewRequest("GET", m.HTTPURL()+"/v1/calls/"+in.CallID.String()+"/pcap", nil)
			req.Header.Set("Authorization", "Bearer "+f.APIKey)
			if res, err = http.DefaultClient.Do(req); err != nil {
				t.Fatal(err)
			}
			pcap, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/vnd.tcpdump.pcap" || len(pcap) < 24 ||
				binary.LittleEndian.Uint32(pcap) != 0xa1b2c3d4 || !bytes.Contains(pcap, []byte("INVITE sip:2000@")) || !bytes.Contains(pcap, []byte("BYE sip:")) {
				t.Errorf("pcap: %d %s, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(pcap))
			}
			if rec.FromCaller.MOS < 4 || rec.FromCaller.MOS > 4.5 || len(rec.Tags) != 0 {
				t.Errorf("record MOS %.2f, tags %v: want a clean call's", rec.FromCaller.MOS, rec.Tags)
			}

			operator := mustLogin(t, m, f.Operators[0])
			if code, _ := operator.do("GET", "/v1/calls/"+in.CallID.String()+"/trace", "", nil); code != http.StatusForbidden {
				t.Errorf("an operator reading a trace: %d, want 403", code)
			}
			other := mustProvision(t, m, "Other", "2001", 1)
			if code := apiGet(t, m, other.APIKey, "/v1/calls/"+in.CallID.String()+"/trace", nil); code != http.StatusNotFound {
				t.Errorf("another tenant reading the trace: %d, want 404", code)
			}
		})
	}
}

// With the tenant's trace policy, stored messages lose their bodies and
// the parties' numbers, but keep what diagnosis needs.
func TestCallTraceRedactedByPolicy(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	if err := metadata.NewTenantService(m.DB).SetTracePolicy(context.Background(), f.Tenant.ID,
		sb.TracePolicy{RetentionDays: 7, DropBodies: true, MaskNumbers: true}); err != nil {
		t.Fatal(err)
	}
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, in := answeredCall(t, m, phone, op, "+15550001111", "2000")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, m, f.APIKey, in.CallID)
	var tr traceBody
	if code := apiGet(t, m, f.APIKey, "/v1/calls/"+in.CallID.String()+"/trace", &tr); code != http.StatusOK || len(tr.SIP) < 5 {
		t.Fatalf("GET trace: %d, %d messages", code, len(tr.SIP))
	}
	for _, msg := range tr.SIP {
		if strings.Contains(msg.Message, "15550001111") || strings.Contains(msg.Message, "m=audio") {
			t.Errorf("stored message keeps the number or the SDP:\n%s", msg.Message)
		}
	}
	if !strings.Contains(tr.SIP[0].Message, "+*******1111") || !strings.Contains(tr.SIP[0].Message, "[body removed") {
		t.Errorf("INVITE not redacted as the policy says:\n%s", tr.SIP[0].Message)
	}
}

// SIP logging is switched on for a call in progress, and for a trunk's
// next calls, without a restart; the messages are logged redacted by the
// tenant's policy, and each switch is audited.
func TestSIPLoggingSwitchedAtRunTime(t *testing.T) {
	m := mustStartService(t, nil)
	f := mustProvision(t, m, "Acme", "2000", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := metadata.NewTenantService(m.DB).SetTracePolicy(ctx, f.Tenant.ID, sb.TracePolicy{RetentionDays: 30, MaskNumbers: true}); err != nil {
		t.Fatal(err)
	}
	admin := mustLogin(t, m, mustUser(t, m, f.Tenant.ID, "admin@acme.test", sb.RoleAdmin))
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})

	call, in := answeredCall(t, m, phone, op, "+15550001111", "2000")
	if strings.Contains(logsOf(m), "sip message") {
		t.Fatal("SIP messages logged before anyone asked")
	}
	path := "/v1/calls/" + in.CallID.String() + "/sip-logging"
	if code, body := admin.do("POST", path, `{"enabled":true}`, nil); code != 200 {
		t.Fatalf("switch on: %d %s", code, body)
	}
	if code, _ := admin.do("POST", path, `{"on":1}`, nil); code != 400 {
		t.Errorf("a bad body: %d, want 400", code)
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, m, f.APIKey, in.CallID)
	logs := logsOf(m)
	if n := strings.Count(logs, "msg=\"sip message\""); n < 7 {
		t.Errorf("%d SIP messages logged, want the INVITE through the BYE's 200", n)
	}
	if strings.Contains(logs, "15550001111") || !strings.Contains(logs, "+*******1111") {
		t.Error("the logged messages do not mask the caller's number as the tenant's policy says")
	}
	if code, _ := admin.do("POST", path, `{"enabled":true}`, nil); code != 409 {
		t.Errorf("switching on an ended call: %d, want 409", code)
	}

	// For the trunk's next calls.
	if code, body := admin.do("POST", "/v1/trunks/"+f.Trunk.ID.String()+"/sip-logging", `{"enabled":true}`, nil); code != 200 {
		t.Fatalf("trunk switch on: %d %s", code, body)
	}
	if code := apiGet(t, m, f.APIKey, "/v1/calls", nil); code != 200 {
		t.Fatal(code)
	}
	supervisor := &person{t: t, m: m, key: f.APIKey}
	if code, _ := supervisor.do("POST", "/v1/trunks/"+f.Trunk.ID.String()+"/sip-logging", `{"enabled":false}`, nil); code != 403 {
		t.Errorf("a supervisor switching a trunk: %d, want 403", code)
	}
	before := strings.Count(logsOf(m), "msg=\"sip message\"")
	call, in = answeredCall(t, m, phone, op, "+15550002222", "2000")
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, m, f.APIKey, in.CallID)
	if n := strings.Count(logsOf(m), "msg=\"sip message\"") - before; n < 7 {
		t.Errorf("%d messages of the trunk's next call logged, want all", n)
	}
	if got := auditActions(t, m, f.Tenant.ID); !containsInOrder(got, "call.sip_logging.on", "trunk.sip_logging.on") {
		t.Errorf("audit %v lacks the switches", got)
	}
}

// mustHEPService starts the service sending HEP (capture agent 77) to a
// collector the test reads.
func mustHEPService(t *testing.T) (net.PacketConn, *Main) {
	t.Helper()
	collector, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { collector.Close() })
	return collector, mustStartService(t, map[string]string{"hep-collector": collector.LocalAddr().String(), "hep-capture-id": "77"})
}

// With a Homer collector configured, every SIP message of a call reaches
// it as HEPv3, tied to the call by its Call-ID.
func TestHEPExport(t *testing.T) {
	collector, m := mustHEPService(t)
	f := mustProvision(t, m, "Acme", "2000", 1)
	op := mustOperator(t, m, f.Operators[0])
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	call, in := answeredCall(t, m, phone, op, "+15550001111", "2000")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCallEnded(t, m, f.APIKey, in.CallID)
	want := map[string]bool{"INVITE sip:2000@": false, "SIP/2.0 180 Ringing": false, "SIP/2.0 200 OK": false, "ACK sip:": false, "BYE sip:": false}
	captureID := []byte{0, 0, 0, 0x0c, 0, 10, 0, 0, 0, 77} // vendor 0, type 0x000c, length 10, 77
	buf := make([]byte, 65536)
	for packets := 0; ; packets++ {
		done := true
		for _, seen := range want {
			done = done && seen
		}
		if done {
			break
		}
		collector.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := collector.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %d HEP packets, saw %v: %v", packets, want, err)
		}
		p := buf[:n]
		if string(p[:4]) != "HEP3" || !bytes.Contains(p, []byte(call.ID)) || !bytes.Contains(p, captureID) {
			t.Errorf("not a HEP3 packet of the call from capture agent 77: % x", p[:min(n, 16)])
			continue
		}
		for start := range want {
			if bytes.Contains(p, []byte(start)) {
				want[start] = true
			}
		}
	}
}

// What leaves the process follows each tenant's trace policy: the HEP
// collector gets a masking tenant's calls with numbers masked and no SDP,
// from the first message on; another tenant's as its policy says (here:
// whole, once its trunk is recognised). Logged SIP messages never hold a
// number, whatever the policy.
func TestHEPAndLogsFollowTheTenantsPolicy(t *testing.T) {
	collector, m := mustHEPService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	strict := mustProvision(t, m, "Strict", "2000", 1)
	if err := metadata.NewTenantService(m.DB).SetTracePolicy(ctx, strict.Tenant.ID, sb.TracePolicy{RetentionDays: 30, DropBodies: true, MaskNumbers: true}); err != nil {
		t.Fatal(err)
	}
	open := mustProvision(t, m, "Open", "3000", 1)
	admin := mustLogin(t, m, mustUser(t, m, open.Tenant.ID, "admin@open.test", sb.RoleAdmin))
	if code, body := admin.do("POST", "/v1/trunks/"+open.Trunk.ID.String()+"/sip-logging", `{"enabled":true}`, nil); code != 200 {
		t.Fatalf("trunk SIP logging on: %d %s", code, body)
	}
	phone := mustPhone(t, siptest.Options{Transport: "udp"})
	calls := map[string]string{} // SIP Call-ID → the caller's number
	for _, c := range []struct {
		f    *tenantFixture
		from string
	}{{strict, "+15550001111"}, {open, "+15550002222"}} {
		call, in := answeredCall(t, m, phone, mustOperator(t, m, c.f.Operators[0]), c.from, c.f.Number)
		if err := call.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		waitCallEnded(t, m, c.f.APIKey, in.CallID)
		calls[call.ID] = c.from
	}

	got := map[string][]string{} // by caller: the messages the collector got
	buf := make([]byte, 65536)
	for {
		collector.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := collector.ReadFrom(buf)
		if err != nil {
			break // a second of quiet: all sent
		}
		for id, from := range calls {
			if bytes.Contains(buf[:n], []byte(id)) {
				got[from] = append(got[from], string(buf[:n]))
			}
		}
	}
	all := func(from string) string { return strings.Join(got[from], "\n---\n") }
	if len(got["+15550001111"]) < 5 || len(got["+15550002222"]) < 5 {
		t.Fatalf("HEP packets per call: %d and %d", len(got["+15550001111"]), len(got["+15550002222"]))
	}
	if s := all("+15550001111"); strings.Contains(s, "5550001111") || strings.Contains(s, "m=audio") ||
		!strings.Contains(s, "+*******1111") || !strings.Contains(s, "[body removed by the tenant's trace policy") {
		t.Errorf("the masking tenant's call reached the collector unmasked or with its SDP:\n%s", s)
	}
	if s := all("+15550002222"); !strings.Contains(s, "+15550002222") || !strings.Contains(s, "m=audio") {
		t.Errorf("the other tenant's call reached the collector redacted beyond its policy:\n%s", s)
	}
	logs := logsOf(m)
	if n := strings.Count(logs, "msg=\"sip message\""); n < 7 {
		t.Errorf("%d SIP messages logged, want the Open tenant's call's", n)
	}
	if strings.Contains(logs, "5550002222") || strings.Contains(logs, "5550001111") {
		t.Error("the logs hold a caller's number")
	}
}
