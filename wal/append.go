package wal

import (
	"context"
	"time"
)

// AppendResult is where a committed append went.
type AppendResult struct {
	// BaseOffset is the offset of the first record of the first batch.
	BaseOffset int64
	// Duplicate reports a retried idempotent batch: nothing new was stored
	// and BaseOffset is where the original went.
	Duplicate bool
}

// Append is one submitted record set, waiting for its entry to commit.
type Append struct {
	req       request
	size      int
	submitted time.Time // for the commit latency (stats.go)
	done      chan struct{}
	res       AppendResult
	err       error
}

func (a *Append) finish(r result, err error) {
	if err == nil {
		err = r.Err
	}
	a.res = AppendResult{BaseOffset: r.Base, Duplicate: r.Duplicate}
	a.err = err
	close(a.done)
}

// Wait blocks until the append is committed (or refused) or ctx ends. A ctx
// that ends does not withdraw the append: it may still commit.
func (a *Append) Wait(ctx context.Context) (AppendResult, error) {
	select {
	case <-a.done:
		return a.res, a.err
	case <-ctx.Done():
		return AppendResult{}, ctx.Err()
	}
}

// Done is closed when the result is known.
func (a *Append) Done() <-chan struct{} { return a.done }

// Submit queues a stream's batches for the next entry and returns at once
// (or when ctx ends, if the queue is full: that is the backpressure).
// Submissions are appended in the order Submit is called, so a connection
// that submits in request order keeps its producer's sequences in order.
// The batches are copied into the entry; the caller keeps ownership.
func (g *Group) Submit(ctx context.Context, stream uint64, batches [][]byte) *Append {
	a := &Append{req: request{stream: stream, batches: batches}, submitted: time.Now(), done: make(chan struct{})}
	a.size = a.req.encodedSize()
	if !g.rg.IsLeader() {
		a.finish(result{}, ErrNotLeader)
		return a
	}
	if max := g.cfg.MaxPendingBytes; max > 0 && g.PendingBytes() >= max {
		a.finish(result{}, ErrWALFull)
		return a
	}
	select {
	case g.queue <- a:
	case <-g.closing:
		a.finish(result{}, ErrClosed)
	case <-ctx.Done():
		a.finish(result{}, ctx.Err())
	}
	return a
}

// Append submits and waits: the synchronous form of Submit.
func (g *Group) Append(ctx context.Context, stream uint64, batches [][]byte) (AppendResult, error) {
	return g.Submit(ctx, stream, batches).Wait(ctx)
}

// appendLoop packs queued appends into entries and hands them to Raft, at
// most Config.MaxInFlight uncommitted at a time (group commit).
func (g *Group) appendLoop() {
	defer g.wg.Done()
	defer close(g.inflight)
	for {
		var first *Append
		select {
		case first = <-g.queue:
		case <-g.closing:
			return
		}
		// Wait for an in-flight slot before draining: while Raft is busy,
		// submissions pile up and make the next entry larger.
		select {
		case g.slots <- struct{}{}:
		case <-g.closing:
			first.finish(result{}, ErrClosed)
			return
		}
		appends := []*Append{first}
		size := entryHeaderSize + first.size
	drain:
		for size < g.cfg.TargetEntryBytes {
			select {
			case a := <-g.queue:
				appends = append(appends, a)
				size += a.size
			default:
				break drain
			}
		}
		reqs := make([]*request, len(appends))
		for i, a := range appends {
			reqs[i] = &a.req
		}
		f := g.rg.Raft.Apply(encodeEntry(reqs, size), g.cfg.ApplyTimeout)
		// Never blocks: inflight has room for every slot.
		g.inflight <- inflightEntry{future: f, appends: appends}
	}
}

// commitLoop waits for entries in log order and wakes their submitters.
func (g *Group) commitLoop() {
	defer g.wg.Done()
	for e := range g.inflight {
		g.complete(e)
	}
}

func (g *Group) complete(e inflightEntry) {
	defer func() { <-g.slots }()
	if err := e.future.Error(); err != nil {
		err = mapRaftError(err)
		for _, a := range e.appends {
			a.finish(result{}, err)
		}
		return
	}
	g.stats.committed(e.appends)
	switch resp := e.future.Response().(type) {
	case []result:
		for i, a := range e.appends {
			a.finish(resp[i], nil)
		}
	case error:
		for _, a := range e.appends {
			a.finish(result{}, resp)
		}
	default:
		panic("wal: FSM returned an unexpected response type: broken invariant")
	}
}
