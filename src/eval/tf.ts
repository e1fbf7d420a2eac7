/**
 * The TensorFlow.js loader now lives in core (../linalg/tf.ts), where the matrix products use it too; this module
 * re-exports it for the kernels until they import it from there.
 *
 * @module
 */
export * from "../linalg/tf.ts";
