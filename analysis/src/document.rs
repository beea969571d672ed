//! The report as a document: a list of blocks (headings, paragraphs, lists, tables, plots),
//! rendered as markdown and as one self-contained HTML page, so both say the same thing. Every
//! section of the report, and the profile's and the stages' sections, build these blocks.

/// A plot as the report shows it.
#[derive(Clone, Debug)]
pub struct RenderedPlot {
    /// Title.
    pub title: String,
    /// PNG path relative to the report.
    pub png: String,
    /// SVG path relative to the report.
    pub svg_file: String,
    /// SVG text, inlined into the HTML.
    pub svg: String,
}

/// A piece of the report. Text is markdown (inline: `code` spans, links): report.md carries it
/// as is, and report.html renders the same markdown.
#[derive(Clone, Debug)]
pub enum Block {
    /// Heading of a level (1..3).
    Heading(u8, String),
    /// Paragraph.
    Para(String),
    /// Bulleted list.
    List(Vec<String>),
    /// Table: header and rows.
    Table(Vec<String>, Vec<Vec<String>>),
    /// A plot.
    Plot(RenderedPlot),
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders blocks as GitHub-flavoured markdown.
pub fn markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Heading(l, t) => {
                out.push_str(&format!("{} {t}\n\n", "#".repeat(*l as usize)));
            }
            Block::Para(t) => out.push_str(&format!("{t}\n\n")),
            Block::List(items) => {
                for i in items {
                    out.push_str(&format!("- {i}\n"));
                }
                out.push('\n');
            }
            Block::Table(h, rows) => {
                let line = |cells: &[String]| {
                    format!(
                        "| {} |\n",
                        cells
                            .iter()
                            .map(|c| md_cell(c))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    )
                };
                out.push_str(&line(h));
                out.push_str(&format!("|{}\n", "---|".repeat(h.len())));
                for r in rows {
                    out.push_str(&line(r));
                }
                out.push('\n');
            }
            Block::Plot(p) => out.push_str(&format!(
                "![{}]({}) ([SVG]({}))\n\n",
                p.title, p.png, p.svg_file
            )),
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders blocks as one self-contained HTML page (plots inlined as SVG; no external files).
pub fn html(blocks: &[Block]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>sendpath report</title>\n<style>\n\
         body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\n\
         table{border-collapse:collapse;margin:1em 0;font-size:0.9em}\n\
         th,td{border:1px solid #ccc;padding:0.25em 0.5em;text-align:left}\n\
         th{background:#f3f3f3}\ncode{background:#f3f3f3;padding:0 0.2em}\n\
         figure{margin:1.5em 0}\nfigure svg{max-width:100%;height:auto}\n\
         </style>\n</head>\n<body>\n",
    );
    for b in blocks {
        match b {
            Block::Plot(p) => {
                let svg = match p.svg.find("<svg") {
                    Some(i) => &p.svg[i..],
                    None => p.svg.as_str(),
                };
                out.push_str(&format!(
                    "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n",
                    esc(&p.title)
                ));
            }
            // Everything else is rendered from the same markdown as report.md.
            text => {
                let md = markdown(std::slice::from_ref(text));
                let parser =
                    pulldown_cmark::Parser::new_ext(&md, pulldown_cmark::Options::ENABLE_TABLES);
                pulldown_cmark::html::push_html(&mut out, parser);
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}
