package metadata

import "fmt"

// CommitObjectCmd records an uploaded object. NowMs + GraceMs (Unix ms) is
// when the object may leave storage if none of its ranges is live on arrival
// (all its streams were deleted).
type CommitObjectCmd struct {
	Object  Object `json:"object"`
	NowMs   int64  `json:"now_ms"`
	GraceMs int64  `json:"grace_ms"`
}

// CompactObjectsCmd replaces the Inputs (object keys) by the Outputs; the
// inputs may leave storage at NowMs + GraceMs.
type CompactObjectsCmd struct {
	Inputs  []string `json:"inputs"`
	Outputs []Object `json:"outputs,omitempty"`
	NowMs   int64    `json:"now_ms"`
	GraceMs int64    `json:"grace_ms"`
}

// TrimStreamCmd advances a stream's log start offset to NewStart; objects left
// with no live range may leave storage at NowMs + GraceMs.
type TrimStreamCmd struct {
	Stream   uint64 `json:"stream"`
	NewStart int64  `json:"new_start"`
	NowMs    int64  `json:"now_ms"`
	GraceMs  int64  `json:"grace_ms"`
}

// ObjectsDeletedCmd removes keys from the pending deletes: the caller deleted
// them from storage.
type ObjectsDeletedCmd struct {
	Keys []string `json:"keys"`
}

// Type implements Command.
func (CommitObjectCmd) Type() CommandType { return CmdCommitObject }

// Type implements Command.
func (CompactObjectsCmd) Type() CommandType { return CmdCompactObjects }

// Type implements Command.
func (TrimStreamCmd) Type() CommandType { return CmdTrimStream }

// Type implements Command.
func (ObjectsDeletedCmd) Type() CommandType { return CmdObjectsDeleted }

func (c CommitObjectCmd) check() error {
	if err := checkObject(&c.Object); err != nil {
		return err
	}
	return checkTime(c.NowMs, c.GraceMs)
}

func (c CompactObjectsCmd) check() error {
	if len(c.Inputs) == 0 {
		return fmt.Errorf("%w: compaction without inputs", ErrInvalidRequest)
	}
	keys := make(map[string]bool, len(c.Inputs)+len(c.Outputs))
	for _, k := range c.Inputs {
		if k == "" || keys[k] {
			return fmt.Errorf("%w: compaction input %q is empty or repeated", ErrInvalidRequest, k)
		}
		keys[k] = true
	}
	for i := range c.Outputs {
		o := &c.Outputs[i]
		if err := checkObject(o); err != nil {
			return err
		}
		if keys[o.Key] {
			return fmt.Errorf("%w: compaction output %s is also an input or repeated", ErrObjectExists, o.Key)
		}
		keys[o.Key] = true
	}
	return checkTime(c.NowMs, c.GraceMs)
}

func (c TrimStreamCmd) check() error {
	if c.Stream == 0 || c.NewStart < 0 {
		return fmt.Errorf("%w: trim stream %d to %d", ErrInvalidRequest, c.Stream, c.NewStart)
	}
	return checkTime(c.NowMs, c.GraceMs)
}

func (c ObjectsDeletedCmd) check() error {
	for _, k := range c.Keys {
		if k == "" {
			return fmt.Errorf("%w: empty object key", ErrInvalidRequest)
		}
	}
	return nil
}
