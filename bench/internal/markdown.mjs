/**
 * A Markdown table from rows of one shape: the first row's keys are the columns.
 *
 * @param {ReadonlyArray<Record<string, unknown>>} rows
 * @returns {string}
 */
export const markdownTable = (rows) => {
  const header = Object.keys(rows[0] ?? {})
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${header.map((h) => r[h]).join(" | ")} |`)
  ].join("\n")
}
