// Sum and maximum over the whole workgroup; every invocation gets the result. Call from uniform
// control flow. The shared-memory variant needs a power-of-two workgroup size.
shared float reduce_scratch[gl_WorkGroupSize.x];

#ifdef USE_SUBGROUPS

float workgroup_sum(float v) {
  v = subgroupAdd(v);
  if (gl_NumSubgroups == 1) return v;
  barrier();  // a previous call may still be reading the scratch
  if (subgroupElect()) reduce_scratch[gl_SubgroupID] = v;
  barrier();
  float total = reduce_scratch[0];
  for (uint i = 1; i < gl_NumSubgroups; ++i) total += reduce_scratch[i];
  return total;
}

float workgroup_max(float v) {
  v = subgroupMax(v);
  if (gl_NumSubgroups == 1) return v;
  barrier();
  if (subgroupElect()) reduce_scratch[gl_SubgroupID] = v;
  barrier();
  float total = reduce_scratch[0];
  for (uint i = 1; i < gl_NumSubgroups; ++i) total = max(total, reduce_scratch[i]);
  return total;
}

#else

float workgroup_sum(float v) {
  const uint id = gl_LocalInvocationID.x;
  barrier();
  reduce_scratch[id] = v;
  barrier();
  for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
    if (id < s) reduce_scratch[id] += reduce_scratch[id + s];
    barrier();
  }
  return reduce_scratch[0];
}

float workgroup_max(float v) {
  const uint id = gl_LocalInvocationID.x;
  barrier();
  reduce_scratch[id] = v;
  barrier();
  for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
    if (id < s) reduce_scratch[id] = max(reduce_scratch[id], reduce_scratch[id + s]);
    barrier();
  }
  return reduce_scratch[0];
}

#endif
