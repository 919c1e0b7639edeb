#pragma once
// Which way the per-pair map of SPEC section 1 is applied. The backward pass (the
// gradient of a loss with respect to q_in or k_in, given the gradient with respect to
// q_out or k_out) is the transpose of each pair's rotation-and-scale: the rotation by
// -phi with the same sigma^e. Both golden paths take a Direction so that the forward
// and backward passes run through one kernel.
namespace xposcheck {

enum class Direction { forward, backward };

}  // namespace xposcheck
