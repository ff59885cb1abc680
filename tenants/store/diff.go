package store

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"sigs.k8s.io/yaml"

	"github.com/tenantmesh/tenantmesh/tenants"
)

// DiffEntry is what Apply would do to one object.
type DiffEntry struct {
	Kind    tenants.Kind `json:"kind"`
	Name    string       `json:"name"`
	Outcome Outcome      `json:"outcome"`
	// Diff is a unified-style diff of the canonical YAML (stored → applied);
	// empty when unchanged.
	Diff string `json:"diff,omitempty"`
}

// Diff validates docs like Apply and returns, per document, what Apply
// would change, without writing anything.
func (s *Store) Diff(ctx context.Context, docs []tenants.Document) ([]DiffEntry, error) {
	preps, err := s.prepare(docs)
	if err != nil {
		return nil, err
	}
	_, objs, err := s.planApply(ctx, docs, preps, 0) // nothing is written: no size limit
	if err != nil {
		return nil, err
	}
	ops := make([]clientv3.Op, len(preps))
	for i, p := range preps {
		ops[i] = clientv3.OpGet(p.key)
	}
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("read current objects: %w", err)
	}
	out := make([]DiffEntry, len(preps))
	for i, p := range preps {
		e := DiffEntry{Kind: objs[i].Kind, Name: objs[i].Name, Outcome: objs[i].Outcome}
		if e.Outcome != Unchanged {
			var before []byte
			if kvs := resp.Responses[i].GetResponseRange().Kvs; len(kvs) == 1 {
				before = kvs[0].Value
			}
			a, err := toYAML(before)
			if err != nil {
				return nil, fmt.Errorf("%s/%s: stored value: %w", kindNoun(e.Kind), e.Name, err)
			}
			b, err := toYAML(p.value)
			if err != nil {
				return nil, err
			}
			label := kindNoun(e.Kind) + "/" + e.Name
			e.Diff = unifiedDiff(label+" (stored)", label+" (applied)", a, b)
		}
		out[i] = e
	}
	return out, nil
}

func toYAML(j []byte) ([]string, error) {
	if j == nil {
		return nil, nil
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return nil, fmt.Errorf("convert to YAML: %w", err)
	}
	lines := strings.SplitAfter(string(y), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines, nil
}

// diffContext is the number of unchanged lines shown around a change.
const diffContext = 3

// maxDiffCells bounds the LCS table; beyond it the diff shows the whole
// object replaced, which is correct if not minimal.
const maxDiffCells = 4 << 20

// unifiedDiff returns a unified diff of two line slices (lines keep their
// newline), with hunks of diffContext lines of context.
func unifiedDiff(nameA, nameB string, a, b []string) string {
	ops := diffLines(a, b)
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", nameA, nameB)
	// Group ops into hunks separated by more than 2*diffContext equal lines.
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(0, i-diffContext)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*diffContext {
				end = min(len(ops), end+diffContext)
				break
			}
			end = run
		}
		aStart, bStart, aLen, bLen := hunkRange(ops, start, end)
		fmt.Fprintf(&sb, "@@ -%d,%d +%d,%d @@\n", aStart, aLen, bStart, bLen)
		for _, op := range ops[start:end] {
			sb.WriteByte(op.kind)
			sb.WriteString(op.line)
		}
		i = end
	}
	return sb.String()
}

type diffOp struct {
	kind byte // ' ', '-', '+'
	line string
	a, b int // 1-based line numbers in a and b at this op
}

func hunkRange(ops []diffOp, start, end int) (aStart, bStart, aLen, bLen int) {
	aStart, bStart = ops[start].a, ops[start].b
	for _, op := range ops[start:end] {
		if op.kind != '+' {
			aLen++
		}
		if op.kind != '-' {
			bLen++
		}
	}
	if aLen == 0 {
		aStart--
	}
	if bLen == 0 {
		bStart--
	}
	return aStart, bStart, aLen, bLen
}

// diffLines computes a line diff by longest common subsequence.
func diffLines(a, b []string) []diffOp {
	n, m := len(a), len(b)
	var ops []diffOp
	if n*m > maxDiffCells {
		for i, l := range a {
			ops = append(ops, diffOp{'-', l, i + 1, 1})
		}
		for j, l := range b {
			ops = append(ops, diffOp{'+', l, n + 1, j + 1})
		}
		return ops
	}
	// lcs[i][j] = LCS length of a[i:] and b[j:].
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, diffOp{' ', a[i], i + 1, j + 1})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			// Removals before additions, as diff(1) prints them.
			ops = append(ops, diffOp{'-', a[i], i + 1, j + 1})
			i++
		default:
			ops = append(ops, diffOp{'+', b[j], i + 1, j + 1})
			j++
		}
	}
	return ops
}
