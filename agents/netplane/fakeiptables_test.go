package netplane

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// fakeIPTables keeps tables in memory and behaves like iptables where the
// plane depends on it: built-in chains exist, a referenced chain cannot be
// deleted, deleting a missing rule fails. Writes counts every mutation.
type fakeIPTables struct {
	tables map[string]map[string][]string
	Writes int
}

var fakeBuiltins = map[string][]string{
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
}

func newFakeIPTables() *fakeIPTables {
	f := &fakeIPTables{tables: map[string]map[string][]string{}}
	for t, cs := range fakeBuiltins {
		f.tables[t] = map[string][]string{}
		for _, c := range cs {
			f.tables[t][c] = nil
		}
	}
	return f
}

func (f *fakeIPTables) chain(table, chain string) ([]string, error) {
	rules, ok := f.tables[table][chain]
	if !ok {
		return nil, fmt.Errorf("fake: chain %s/%s does not exist", table, chain)
	}
	return rules, nil
}

func (f *fakeIPTables) ListChains(table string) ([]string, error) {
	var out []string
	for c := range f.tables[table] {
		out = append(out, c)
	}
	sort.Strings(out)
	return out, nil
}

func (f *fakeIPTables) ChainExists(table, chain string) (bool, error) {
	_, ok := f.tables[table][chain]
	return ok, nil
}

func (f *fakeIPTables) NewChain(table, chain string) error {
	if _, ok := f.tables[table][chain]; ok {
		return fmt.Errorf("fake: chain %s exists", chain)
	}
	if len(chain) > 28 {
		return fmt.Errorf("fake: chain name %s too long", chain)
	}
	f.tables[table][chain] = []string{}
	f.Writes++
	return nil
}

func (f *fakeIPTables) ClearAndDeleteChain(table, chain string) error {
	if _, err := f.chain(table, chain); err != nil {
		return err
	}
	if slices.Contains(fakeBuiltins[table], chain) {
		return fmt.Errorf("fake: cannot delete built-in %s", chain)
	}
	for c, rules := range f.tables[table] {
		for _, rl := range rules {
			if strings.HasSuffix(rl, "-j "+chain) {
				return fmt.Errorf("fake: chain %s is referenced from %s", chain, c)
			}
		}
	}
	delete(f.tables[table], chain)
	f.Writes++
	return nil
}

func (f *fakeIPTables) List(table, chain string) ([]string, error) {
	rules, err := f.chain(table, chain)
	if err != nil {
		return nil, err
	}
	out := []string{"-N " + chain}
	if slices.Contains(fakeBuiltins[table], chain) {
		out[0] = "-P " + chain + " ACCEPT"
	}
	for _, rl := range rules {
		out = append(out, "-A "+chain+" "+rl)
	}
	return out, nil
}

func (f *fakeIPTables) Exists(table, chain string, spec ...string) (bool, error) {
	rules, err := f.chain(table, chain)
	if err != nil {
		return false, err
	}
	return slices.Contains(rules, strings.Join(spec, " ")), nil
}

func (f *fakeIPTables) Insert(table, chain string, pos int, spec ...string) error {
	rules, err := f.chain(table, chain)
	if err != nil {
		return err
	}
	if pos < 1 || pos > len(rules)+1 {
		return fmt.Errorf("fake: index %d out of range", pos)
	}
	f.tables[table][chain] = slices.Insert(rules, pos-1, strings.Join(spec, " "))
	f.Writes++
	return nil
}

func (f *fakeIPTables) Append(table, chain string, spec ...string) error {
	rules, err := f.chain(table, chain)
	if err != nil {
		return err
	}
	f.tables[table][chain] = append(rules, strings.Join(spec, " "))
	f.Writes++
	return nil
}

func (f *fakeIPTables) Delete(table, chain string, spec ...string) error {
	rules, err := f.chain(table, chain)
	if err != nil {
		return err
	}
	i := slices.Index(rules, strings.Join(spec, " "))
	if i < 0 {
		return fmt.Errorf("fake: no such rule in %s: %s", chain, strings.Join(spec, " "))
	}
	f.tables[table][chain] = slices.Delete(rules, i, i+1)
	f.Writes++
	return nil
}

func (f *fakeIPTables) DeleteById(table, chain string, id int) error {
	rules, err := f.chain(table, chain)
	if err != nil {
		return err
	}
	if id < 1 || id > len(rules) {
		return fmt.Errorf("fake: index %d out of range", id)
	}
	f.tables[table][chain] = slices.Delete(rules, id-1, id)
	f.Writes++
	return nil
}

// dump renders a table's rules: built-in chains first, then the others
// sorted by name.
func (f *fakeIPTables) dump(table string) []string {
	var out []string
	chains := slices.Clone(fakeBuiltins[table])
	others, _ := f.ListChains(table)
	for _, c := range others {
		if !slices.Contains(chains, c) {
			chains = append(chains, c)
		}
	}
	for _, c := range chains {
		for _, rl := range f.tables[table][c] {
			out = append(out, "-A "+c+" "+rl)
		}
	}
	return out
}
