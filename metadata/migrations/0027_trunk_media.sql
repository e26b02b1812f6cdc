-- How a trunk's outbound calls carry their audio: plain RTP, or DTLS-SRTP
-- over ICE (UDP/TLS/RTP/SAVPF), which messenger platforms' SIP servers and
-- WebRTC-capable SBCs take. Inbound calls are answered in whatever the
-- caller offers.
ALTER TABLE trunks ADD COLUMN outbound_media text NOT NULL DEFAULT 'rtp' CHECK (outbound_media IN ('rtp', 'dtls'));
