// Prepended (--pre-js) to the programs that run under node: they see the process's environment
// (T2R_CPU chooses a kernel path as in a native build), which emscripten does not pass by itself.
Module['preRun'] = (Module['preRun'] || []).concat(function () {
  for (var name in process.env) ENV[name] = process.env[name];
});
