package main

// Run is run, for the in-process tests of package main_test.
var Run = run
