export async function runDemo(_: { port?: number | undefined }): Promise<number> {
  console.error('demo: not yet');
  return 1;
}
