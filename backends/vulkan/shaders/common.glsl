// Included first by every kernel. The workgroup size is specialization constant 0; the variants
// compiled with -DUSE_SUBGROUPS reduce with subgroup arithmetic, the others in shared memory.
#ifdef USE_SUBGROUPS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0) in;

// Dispatches of more workgroups than the device allows along x are split over y (Program).
uint group_index() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }
uint global_index() { return group_index() * gl_WorkGroupSize.x + gl_LocalInvocationID.x; }
