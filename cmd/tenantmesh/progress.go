package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progressLine shows a long apply's progress on one updating terminal
// line: count, rate and the time left.
type progressLine struct {
	w     io.Writer
	now   func() time.Time
	start time.Time
	last  time.Time
}

// newProgress returns the progress callback for store.ApplyOptions when
// w is a terminal, nil otherwise: logs and pipes get no control
// characters.
func newProgress(w io.Writer) (report func(done, total int), finish func()) {
	if !isTerminal(w) {
		return nil, func() {}
	}
	p := &progressLine{w: w, now: time.Now}
	p.start = p.now()
	return p.report, p.finish
}

// isTerminal reports whether w is a character device (a TTY).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// report rewrites the line, at most ten times a second and always for
// the last transaction.
func (p *progressLine) report(done, total int) {
	now := p.now()
	if done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	fmt.Fprintf(p.w, "\r%s\x1b[K", progressText(done, total, now.Sub(p.start)))
}

// finish ends the line so that what follows starts on its own.
func (p *progressLine) finish() {
	if !p.last.IsZero() {
		fmt.Fprintln(p.w)
	}
}

// progressText is "applied 1200/10000 objects, 540/s, about 16s left".
func progressText(done, total int, elapsed time.Duration) string {
	s := fmt.Sprintf("applied %d/%d objects", done, total)
	if elapsed <= 0 || done == 0 {
		return s
	}
	rate := float64(done) / elapsed.Seconds()
	s += fmt.Sprintf(", %.0f/s", rate)
	if done < total {
		left := time.Duration(float64(total-done) / rate * float64(time.Second))
		s += fmt.Sprintf(", about %s left", left.Round(time.Second))
	}
	return s
}
