package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// seqRecords returns n records with values "<prefix>-<i>".
func seqRecords(prefix string, n int) []testRecord {
	recs := make([]testRecord, n)
	for i := range recs {
		recs[i] = testRecord{key: fmt.Appendf(nil, "k%d", i), value: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	return recs
}

// TestIdempotentRetry injects a producer retry at the protocol level: the
// exact same Produce request sent twice is answered with the original base
// offset and stored once; a sequence gap is refused with
// OUT_OF_ORDER_SEQUENCE_NUMBER and stores nothing.
func TestIdempotentRetry(t *testing.T) {
	b := StartBroker(t)
	createTopic(t, b, "idem", 1)
	r := dialRaw(t, b.Addr)
	pid, epoch := r.initProducerID()
	if pid < 0 || epoch < 0 {
		t.Fatalf("InitProducerId: id %d epoch %d", pid, epoch)
	}
	ts := time.Now().UnixMilli()

	first := r.produceRequest("idem", 0, -1, makeBatch(pid, epoch, 0, ts, seqRecords("a", 10)))
	p1 := r.sendProduce(first)
	if p1.ErrorCode != 0 || p1.BaseOffset != 0 {
		t.Fatalf("first produce: error %d, base offset %d, want 0 and 0", p1.ErrorCode, p1.BaseOffset)
	}
	p2 := r.sendProduce(first) // the very same request: a retry
	if p2.ErrorCode != 0 || p2.BaseOffset != p1.BaseOffset {
		t.Fatalf("retry: error %d (%v), base offset %d, want the original %d",
			p2.ErrorCode, kerr.ErrorForCode(p2.ErrorCode), p2.BaseOffset, p1.BaseOffset)
	}
	hw, _, values := r.fetchAll("idem", 0)
	if hw != 10 || len(values) != 10 {
		t.Fatalf("after the retry: high watermark %d, %d records, want 10 and 10", hw, len(values))
	}

	// A gap: sequence 20 where 10 is expected.
	gap := r.produce("idem", 0, makeBatch(pid, epoch, 20, ts, seqRecords("gap", 5)))
	if gap.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("sequence gap: error %d (%v), want OUT_OF_ORDER_SEQUENCE_NUMBER", gap.ErrorCode, kerr.ErrorForCode(gap.ErrorCode))
	}
	// The next sequence in order is accepted after the refused one.
	next := r.produce("idem", 0, makeBatch(pid, epoch, 10, ts, seqRecords("b", 5)))
	if next.ErrorCode != 0 || next.BaseOffset != 10 {
		t.Fatalf("in-order batch after the gap: error %d, base offset %d, want 0 and 10", next.ErrorCode, next.BaseOffset)
	}

	hw, batches, values := r.fetchAll("idem", 0)
	if hw != 15 || len(values) != 15 {
		t.Fatalf("high watermark %d, %d records, want 15 and 15", hw, len(values))
	}
	for i, v := range values {
		want := fmt.Sprintf("a-%d", i)
		if i >= 10 {
			want = fmt.Sprintf("b-%d", i-10)
		}
		if string(v) != want {
			t.Errorf("offset %d: %q, want %q", i, v, want)
		}
	}
	for _, bt := range batches {
		if bt.ProducerID != pid || bt.ProducerEpoch != epoch {
			t.Errorf("batch at %d: producer %d/%d, want %d/%d", bt.FirstOffset, bt.ProducerID, bt.ProducerEpoch, pid, epoch)
		}
	}
}
