package s3stream_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/shoal-io/shoal/s3stream"
	"github.com/shoal-io/shoal/s3stream/s3test"
)

func TestMeteredCountsPerReason(t *testing.T) {
	m := s3stream.NewMetered(s3test.NewMemStore())
	ctx := t.Context()
	up := s3stream.WithReason(ctx, s3stream.ReasonUpload)
	fetch := s3stream.WithReason(ctx, s3stream.ReasonFetch)
	gc := s3stream.WithReason(ctx, s3stream.ReasonGC)

	for _, key := range []string{"a", "b"} {
		if err := m.Put(up, key, bytes.NewReader(make([]byte, 1000)), -1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Get(fetch, "a", 100, 300); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(fetch, "missing", 0, -1); !errors.Is(err, s3stream.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := m.Head(gc, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.List(gc, ""); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(gc, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.List(ctx, ""); err != nil {
		t.Fatal(err)
	}
	want := map[s3stream.Reason]s3stream.OpCounts{
		s3stream.ReasonUpload: {Put: 2, PutBytes: 2000},
		s3stream.ReasonFetch:  {Get: 2, GetBytes: 300, Errors: 1},
		s3stream.ReasonGC:     {Head: 1, List: 1, Delete: 1},
		s3stream.ReasonOther:  {List: 1},
	}
	got := m.Counts()
	if len(got) != len(want) {
		t.Fatalf("counts %+v", got)
	}
	for r, w := range want {
		if got[r] != w {
			t.Errorf("%s: %+v, want %+v", r, got[r], w)
		}
	}
	if tot := m.Total(); tot.Put != 2 || tot.Get != 2 || tot.List != 2 || tot.Errors != 1 {
		t.Errorf("total %+v", tot)
	}
	if s3stream.ReasonFrom(context.Background()) != s3stream.ReasonOther {
		t.Error("default reason")
	}
}

func TestMeteredFailedPutCountsError(t *testing.T) {
	fs := s3test.NewFaultStore(s3test.NewMemStore())
	fs.FailAll(s3stream.ErrUnreachable)
	m := s3stream.NewMetered(fs)
	ctx := s3stream.WithReason(t.Context(), s3stream.ReasonUpload)
	if err := m.Put(ctx, "k", bytes.NewReader([]byte("x")), 1); !errors.Is(err, s3stream.ErrUnreachable) {
		t.Fatal(err)
	}
	if c := m.Counts()[s3stream.ReasonUpload]; c.Put != 1 || c.Errors != 1 || c.PutBytes != 0 {
		t.Fatalf("%+v", c)
	}
}

func TestMeteredConcurrent(t *testing.T) {
	m := s3stream.NewMetered(s3test.NewMemStore())
	ctx := s3stream.WithReason(t.Context(), s3stream.ReasonCompaction)
	if err := m.Put(ctx, "k", bytes.NewReader(make([]byte, 10)), 10); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				_, _ = m.Get(ctx, "k", 0, -1)
			}
		})
	}
	wg.Wait()
	if c := m.Counts()[s3stream.ReasonCompaction]; c.Get != 400 || c.GetBytes != 4000 {
		t.Fatalf("%+v", c)
	}
}
